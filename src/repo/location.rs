//! Where a repository is: `--repo URL` parsed into an object store and a prefix.
//!
//! Credentials never appear in the URL: each backend reads them from the environment
//! or the provider's usual files (`AmazonS3Builder::from_env` and its GCS and Azure
//! counterparts), so nothing tidemark prints or stores can hold a key. A URL that
//! carries a user or password is refused for the same reason.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, RetryConfig};

/// An opened repository: the object store and the prefix everything lives under.
#[derive(Clone)]
pub struct Repo {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The URL as given (it holds no credentials: see [`open`]).
    pub url: String,
    /// The same backend's multipart calls with upload ids, where it has them (S3,
    /// GCS, Azure; not the local filesystem): what lets an upload cut by a crash
    /// be continued by the next process (`super::resume`).
    pub multipart: Option<Arc<dyn MultipartStore>>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("url", &self.url).finish()
    }
}

/// Retries the backends do themselves (transient HTTP errors, timeouts), with
/// exponential backoff; what still fails after them is an error the caller reports
/// (or retries a whole segment for).
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 5,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

/// Opens `url`: `s3://bucket/prefix` (S3 and S3-compatible: the endpoint, region and
/// keys from `AWS_*` variables), `gs://bucket/prefix`, `az://container/prefix`
/// (or `azure://`, `abfs://`), `file:///absolute/path`.
pub fn open(url: &str) -> anyhow::Result<Repo> {
    let (scheme, rest) = url.split_once("://").with_context(|| {
        format!("--repo {url:?}: not a URL (s3://bucket/prefix, gs://…, az://…, file:///path)")
    })?;
    if rest.split('/').next().unwrap_or("").contains('@') {
        bail!("--repo {}: credentials do not go in the URL; give them in the environment (AWS_ACCESS_KEY_ID, …) or the provider's files", redact(url));
    }
    let (store, multipart, prefix): (Arc<dyn ObjectStore>, Multipart, &str) = match scheme {
        "s3" | "s3a" => {
            let (bucket, prefix) = bucket_and_prefix(url, rest)?;
            let s = object_store::aws::AmazonS3Builder::from_env()
                .with_url(format!("s3://{bucket}"))
                .with_retry(retry())
                .build()
                .with_context(|| format!("--repo {url}"))?;
            let (store, multipart) = both(s);
            (store, multipart, prefix)
        }
        "gs" => {
            let (bucket, prefix) = bucket_and_prefix(url, rest)?;
            let s = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(format!("gs://{bucket}"))
                .with_retry(retry())
                .build()
                .with_context(|| format!("--repo {url}"))?;
            let (store, multipart) = both(s);
            (store, multipart, prefix)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let (container, prefix) = bucket_and_prefix(url, rest)?;
            let s = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(format!("{scheme}://{container}"))
                .with_retry(retry())
                .build()
                .with_context(|| format!("--repo {url}"))?;
            let (store, multipart) = both(s);
            (store, multipart, prefix)
        }
        "file" => {
            let path = rest;
            if !path.starts_with('/') {
                bail!("--repo {url:?}: a file repository needs an absolute path (file:///path)");
            }
            std::fs::create_dir_all(path)
                .with_context(|| format!("--repo {url}: creating {path}"))?;
            let s = object_store::local::LocalFileSystem::new_with_prefix(path)
                .with_context(|| format!("--repo {url}"))?;
            (Arc::new(s), None, "")
        }
        other => bail!("--repo {url:?}: unknown scheme {other:?} (s3, gs, az, file)"),
    };
    let prefix = Path::parse(prefix.trim_matches('/'))
        .with_context(|| format!("--repo {url:?}: bad prefix"))?;
    Ok(Repo {
        store,
        multipart,
        prefix,
        url: url.to_string(),
    })
}

type Multipart = Option<Arc<dyn MultipartStore>>;

/// One backend seen both as an object store and through its multipart calls.
fn both<S: ObjectStore + MultipartStore>(s: S) -> (Arc<dyn ObjectStore>, Multipart) {
    let s = Arc::new(s);
    (s.clone(), Some(s))
}

fn bucket_and_prefix<'a>(url: &str, rest: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("--repo {url:?}: no bucket");
    }
    Ok((bucket, prefix))
}

/// `url` with anything that looks like a user or password removed, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_credentials_are_refused_without_repeating_them() {
        let e = open("s3://AKIA:secret@bucket/p").unwrap_err().to_string();
        assert!(!e.contains("secret") && !e.contains("AKIA"), "{e}");
        assert!(e.contains("credentials do not go in the URL"), "{e}");
    }

    #[test]
    fn bad_urls_are_one_clear_error() {
        for (url, words) in [
            ("bucket/prefix", "not a URL"),
            ("ftp://x/y", "unknown scheme"),
            ("s3:///prefix", "no bucket"),
            ("file://relative/path", "absolute path"),
        ] {
            let e = open(url).unwrap_err().to_string();
            assert!(e.contains(words), "{url}: {e}");
        }
    }

    #[test]
    fn a_file_repository_keeps_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/repo", dir.path().display());
        let r = open(&url).unwrap();
        assert_eq!(r.prefix.as_ref(), "");
        assert!(dir.path().join("repo").is_dir());
    }
}
