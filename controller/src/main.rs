//! `poolpatch`: the command-line front of the controller. Everything it does lives in the
//! library; this only parses arguments, sets up logging and turns the result into an exit
//! code (documented in `docs/usage/runbook.md` and `poolpatch --help`).

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = poolpatch::cli::Cli::parse();
    poolpatch::cli::init_logging(cli.verbose);
    let code = poolpatch::cli::main(cli);
    std::process::ExitCode::from(code as u8)
}
