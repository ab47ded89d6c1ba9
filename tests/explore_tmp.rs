use poolpatch::exec::carry_out;
use poolpatch::sim::SimDurations;
use poolpatch_tests::*;

#[tokio::test(start_paused = true)]
async fn explore() {
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(15));
        eprintln!("HUNG");
        std::process::exit(3);
    });
    let (inventory, mut change) = example();
    scope_pools(&mut change, &["se01.ams.contoso.com"]);
    let sim = Simulation::new(&inventory, &change, SimDurations::default(), None);
    let plan = poolpatch_plans::plan(&sim.inventory, &change);
    let rx = tokio::sync::watch::channel(false).1;
    let report = carry_out(
        &plan,
        &sim.inventory,
        &change,
        sim.connector.clone(),
        &sim.context(),
        rx,
    )
    .await
    .unwrap();
    eprintln!("{:?}", report.summary);
}
