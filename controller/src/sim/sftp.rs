//! The `sftp` subsystem of a simulated host, over its in-memory file store.
//!
//! Enough of SFTP v3 for staging an installer: open (create, truncate), write, read, close,
//! stat, remove, rename (refusing an existing target, as OpenSSH's sftp-server does),
//! mkdir and realpath. Files are recorded when a handle opened for writing is closed. The
//! store honours the host's free disk space.

use std::collections::HashMap;

use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::{Handler, StatusReply};

use super::config::sha256_hex;
use super::host::{SimHost, StoredFile};
use super::record::SimEventKind;
use super::script::path_key;

/// Largest single file the simulator stores (the memory it may take).
const MAX_FILE_BYTES: u64 = 2 << 30;

struct OpenFile {
    /// Store key.
    key: String,
    /// The path as the client named it.
    path: String,
    written: bool,
}

/// One SFTP session.
pub(crate) struct SimSftp {
    host: SimHost,
    handles: HashMap<String, OpenFile>,
    next_handle: u64,
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn no_such_file(path: &str) -> StatusReply {
    StatusCode::NoSuchFile.with_message(format!("{path}: no such file"))
}

fn file_attrs(len: u64) -> FileAttributes {
    let mut a = FileAttributes {
        size: Some(len),
        permissions: Some(0o644),
        ..FileAttributes::default()
    };
    a.set_regular(true);
    a
}

impl SimSftp {
    pub(crate) fn new(host: SimHost) -> SimSftp {
        SimSftp {
            host,
            handles: HashMap::new(),
            next_handle: 0,
        }
    }

    fn open_file(&self, handle: &str) -> Result<&OpenFile, StatusReply> {
        self.handles
            .get(handle)
            .ok_or_else(|| StatusCode::Failure.with_message("unknown handle"))
    }

    /// Attributes of `key`: a file, or a directory when some file lives below it.
    fn attrs_of(&self, key: &str, path: &str) -> Result<FileAttributes, StatusReply> {
        let st = self.host.lock();
        if let Some(f) = st.files.get(key) {
            return Ok(file_attrs(f.data.len() as u64));
        }
        let dir = format!("{}/", key.trim_end_matches('/'));
        if key.is_empty() || key == "/" || st.files.keys().any(|k| k.starts_with(&dir)) {
            let mut a = FileAttributes::dummy();
            a.set_dir(true);
            return Ok(a);
        }
        Err(no_such_file(path))
    }
}

impl Handler for SimSftp {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.into()
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let key = path_key(&filename);
        {
            let mut st = self.host.lock();
            let exists = st.files.contains_key(&key);
            if pflags.contains(OpenFlags::CREATE) && pflags.contains(OpenFlags::EXCLUDE) && exists {
                return Err(StatusCode::Failure.with_message(format!("{filename}: file exists")));
            }
            if !exists && !pflags.contains(OpenFlags::CREATE) {
                return Err(no_such_file(&filename));
            }
            if !exists || pflags.contains(OpenFlags::TRUNCATE) {
                st.files.insert(
                    key.clone(),
                    StoredFile {
                        path: filename.clone(),
                        data: Vec::new(),
                    },
                );
            }
        }
        self.next_handle += 1;
        let handle = format!("h{}", self.next_handle);
        self.handles.insert(
            handle.clone(),
            OpenFile {
                key,
                path: filename,
                written: pflags.contains(OpenFlags::WRITE),
            },
        );
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        let Some(open) = self.handles.remove(&handle) else {
            return Err(StatusCode::Failure.with_message("unknown handle"));
        };
        if open.written {
            let stored = {
                let st = self.host.lock();
                st.files
                    .get(&open.key)
                    .map(|f| (sha256_hex(&f.data), f.data.len() as u64))
            };
            if let Some((sha256, bytes)) = stored {
                self.host.push(SimEventKind::FileStored {
                    path: open.path,
                    sha256,
                    bytes,
                });
            }
        }
        Ok(ok(id))
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let key = self.open_file(&handle)?.key.clone();
        let st = self.host.lock();
        let Some(f) = st.files.get(&key) else {
            return Err(StatusCode::Eof.into());
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start >= f.data.len() {
            return Err(StatusCode::Eof.into());
        }
        let end = start.saturating_add(len as usize).min(f.data.len());
        Ok(Data {
            id,
            data: f.data[start..end].to_vec(),
        })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let key = self.open_file(&handle)?.key.clone();
        let free_bytes = self.host.config().free_bytes;
        let mut st = self.host.lock();
        let stored = st.stored_bytes();
        let Some(f) = st.files.get_mut(&key) else {
            return Err(StatusCode::Failure.with_message("the file was removed"));
        };
        let end = offset.saturating_add(data.len() as u64);
        let growth = end.saturating_sub(f.data.len() as u64);
        if end > MAX_FILE_BYTES || stored.saturating_add(growth) > free_bytes {
            return Err(StatusCode::Failure.with_message("There is not enough space on the disk."));
        }
        // Both fit in memory: `end` is at most MAX_FILE_BYTES.
        let (start, end) = (offset as usize, end as usize);
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[start..end].copy_from_slice(&data);
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.stat(id, path).await
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let attrs = self.attrs_of(&path_key(&path), &path)?;
        Ok(Attrs { id, attrs })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let open = self.open_file(&handle)?;
        let attrs = self.attrs_of(&open.key, &open.path)?;
        Ok(Attrs { id, attrs })
    }

    async fn setstat(
        &mut self,
        id: u32,
        _path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        _handle: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Ok(ok(id))
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let removed = self.host.lock().files.remove(&path_key(&filename));
        match removed {
            Some(_) => {
                self.host.push(SimEventKind::FileRemoved { path: filename });
                Ok(ok(id))
            }
            None => Err(no_such_file(&filename)),
        }
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let (from, to) = (path_key(&oldpath), path_key(&newpath));
        {
            let mut st = self.host.lock();
            if st.files.contains_key(&to) {
                return Err(StatusCode::Failure.with_message(format!("{newpath}: file exists")));
            }
            let Some(mut f) = st.files.remove(&from) else {
                return Err(no_such_file(&oldpath));
            };
            f.path = newpath.clone();
            st.files.insert(to, f);
        }
        self.host.push(SimEventKind::FileRenamed {
            from: oldpath,
            to: newpath,
        });
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        _path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let path = if path.is_empty() || path == "." {
            "/C:/Users/poolpatch".to_string()
        } else {
            path
        };
        Ok(Name {
            id,
            files: vec![File::dummy(path)],
        })
    }
}
