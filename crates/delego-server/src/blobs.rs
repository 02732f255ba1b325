//! Where attachment content lives. The database keeps each attachment's metadata; a
//! [`BlobStore`] keeps its bytes, named by the attachment's id. [`LocalDirectory`] keeps
//! them as files in one directory on this node.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use delego_core::id::AttachmentId;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Content flowing in or out, a chunk at a time.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// What [`BlobStore::put`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

/// Stored content, opened for reading.
pub struct Blob {
    pub size: u64,
    pub content: ByteStream,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the content is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no content is stored under this id")]
    NotFound,
    #[error(transparent)]
    Io(#[from] io::Error),
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `content` under `id`, returning its size and SHA-256. When the content runs
    /// past `limit` bytes or the stream fails, nothing is kept under any name.
    async fn put(
        &self,
        id: AttachmentId,
        content: ByteStream,
        limit: u64,
    ) -> Result<Stored, BlobError>;
    /// The content stored under `id`, streamed rather than read into memory.
    async fn open(&self, id: AttachmentId) -> Result<Blob, BlobError>;
    /// Removes the content under `id`; removing what is not there is not an error.
    async fn delete(&self, id: AttachmentId) -> Result<(), BlobError>;
}

/// Files in a local directory: `<root>/<shard>/<id>`, with partial writes in
/// `<root>/tmp` until they are complete and synced.
pub struct LocalDirectory {
    root: PathBuf,
}

/// Partial files older than this are left over from a crash, not in progress.
const STALE_PARTIAL: Duration = Duration::from_secs(24 * 60 * 60);

impl LocalDirectory {
    /// Opens (creating it if needed) the directory, and removes partial files a crash left.
    pub async fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join("tmp")).await?;
        let directory = Self { root };
        directory.sweep_stale_partials().await?;
        Ok(directory)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The final path of an id's file. The shard is the id's *last* two hex digits: ids are
    /// UUIDv7, whose leading digits are a timestamp that barely changes, so sharding by
    /// them would put every file in one directory; the tail is random.
    fn path(&self, id: AttachmentId) -> PathBuf {
        let name = id.as_uuid().simple().to_string();
        let shard = &name[name.len() - 2..];
        self.root.join(shard).join(id.to_string())
    }

    async fn sweep_stale_partials(&self) -> io::Result<()> {
        let mut entries = tokio::fs::read_dir(self.root.join("tmp")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let age = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok());
            if age.is_some_and(|age| age > STALE_PARTIAL) {
                // Best effort: a file that will not go away is only wasted space.
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
        Ok(())
    }

    /// Streams `content` into `file`, hashing as it goes.
    async fn write(
        file: &mut tokio::fs::File,
        mut content: ByteStream,
        limit: u64,
    ) -> Result<Stored, BlobError> {
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = content.next().await {
            let chunk = chunk?;
            size = size.saturating_add(chunk.len() as u64);
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok(Stored {
            size,
            sha256: hex(&hasher.finalize()),
        })
    }
}

#[async_trait]
impl BlobStore for LocalDirectory {
    async fn put(
        &self,
        id: AttachmentId,
        content: ByteStream,
        limit: u64,
    ) -> Result<Stored, BlobError> {
        let target = self.path(id);
        let shard = target.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&shard).await?;
        // A unique name per attempt, so two writers of one id never share a partial file.
        let partial = self
            .root
            .join("tmp")
            .join(format!("{id}.{}.part", uuid::Uuid::now_v7().simple()));
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .await?;
        let written = Self::write(&mut file, content, limit).await;
        drop(file);
        let stored = match written {
            Ok(stored) => stored,
            Err(error) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(error);
            }
        };
        // The rename is atomic: readers see no file or the whole synced file, never part.
        if let Err(error) = tokio::fs::rename(&partial, &target).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error.into());
        }
        sync_directory(shard).await?;
        Ok(stored)
    }

    async fn open(&self, id: AttachmentId) -> Result<Blob, BlobError> {
        let file = match tokio::fs::File::open(self.path(id)).await {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound);
            }
            Err(error) => return Err(error.into()),
        };
        let size = file.metadata().await?.len();
        Ok(Blob {
            size,
            content: Box::pin(tokio_util::io::ReaderStream::new(file)),
        })
    }

    async fn delete(&self, id: AttachmentId) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(id)).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// Makes a rename in `directory` durable: without it a crash can forget the new name even
/// though the file's content was synced.
async fn sync_directory(directory: PathBuf) -> io::Result<()> {
    #[cfg(unix)]
    {
        tokio::task::spawn_blocking(move || std::fs::File::open(directory)?.sync_all())
            .await
            .map_err(io::Error::other)?
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for syncing elsewhere; NTFS journals renames.
        let _ = directory;
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<io::Result<&'static [u8]>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(
            parts.into_iter().map(|part| part.map(Bytes::from_static)),
        ))
    }

    async fn read_all(blob: Blob) -> Vec<u8> {
        let mut out = Vec::new();
        let mut content = blob.content;
        while let Some(chunk) = content.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    /// Every file under `root`, relative to it.
    fn files(root: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(directory) = pending.pop() {
            for entry in std::fs::read_dir(&directory).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    found.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        found
    }

    #[tokio::test]
    async fn put_stores_the_bytes_under_the_id_with_their_size_and_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirectory::open(dir.path()).await.unwrap();
        let id = AttachmentId::new();
        let stored = store
            .put(id, chunks(vec![Ok(b"hello, "), Ok(b""), Ok(b"world")]), 100)
            .await
            .unwrap();
        assert_eq!(stored.size, 12);
        assert_eq!(stored.sha256, hex(&Sha256::digest(b"hello, world")));
        assert_eq!(
            stored.sha256,
            "09ca7e4eaa6e8ae9c7d261167129184883644d07dfba7cbfbc4c8a2e08360d5b"
        );
        let blob = store.open(id).await.unwrap();
        assert_eq!(blob.size, 12);
        assert_eq!(read_all(blob).await, b"hello, world");
    }

    #[tokio::test]
    async fn a_completed_write_leaves_one_sharded_file_and_no_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirectory::open(dir.path()).await.unwrap();
        let id = AttachmentId::new();
        store.put(id, chunks(vec![Ok(b"data")]), 100).await.unwrap();
        let simple = id.as_uuid().simple().to_string();
        let expected = Path::new(&simple[30..]).join(id.to_string());
        assert_eq!(files(dir.path()), [expected.display().to_string()]);
    }

    #[tokio::test]
    async fn content_over_the_limit_or_a_broken_stream_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirectory::open(dir.path()).await.unwrap();
        let id = AttachmentId::new();
        let err = store
            .put(id, chunks(vec![Ok(b"12345"), Ok(b"678")]), 7)
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 7 }), "{err:?}");
        let broken = chunks(vec![Ok(b"12"), Err(io::Error::other("connection reset"))]);
        let err = store.put(id, broken, 100).await.unwrap_err();
        assert!(matches!(err, BlobError::Io(_)), "{err:?}");
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
        assert!(matches!(store.open(id).await, Err(BlobError::NotFound)));
    }

    #[tokio::test]
    async fn exactly_the_limit_is_accepted_and_delete_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirectory::open(dir.path()).await.unwrap();
        let id = AttachmentId::new();
        let stored = store
            .put(id, chunks(vec![Ok(b"1234567")]), 7)
            .await
            .unwrap();
        assert_eq!(stored.size, 7);
        store.delete(id).await.unwrap();
        store.delete(id).await.unwrap();
        assert!(matches!(store.open(id).await, Err(BlobError::NotFound)));
        assert!(files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn opening_sweeps_partial_files_left_by_a_crash_but_not_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        LocalDirectory::open(dir.path()).await.unwrap();
        let old = dir.path().join("tmp").join("old.part");
        let fresh = dir.path().join("tmp").join("fresh.part");
        std::fs::write(&old, b"half").unwrap();
        std::fs::write(&fresh, b"half").unwrap();
        let long_ago = std::time::SystemTime::now() - STALE_PARTIAL * 2;
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        LocalDirectory::open(dir.path()).await.unwrap();
        assert!(!old.exists());
        assert!(fresh.exists());
    }
}
