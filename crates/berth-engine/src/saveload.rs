//! `docker save` and `docker load`: berth-image's archive code behind the API, with the
//! archive streamed between the HTTP body and a blocking thread in both directions.

use std::io::{self, Read, Write};

use berth_image::{LoadOptions, SaveFormat};
use berth_server::backend::{ByteStream, ItemStream, LoadLine};
use berth_types::Error;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::engine::Engine;

/// Chunks of a save stream handed to the HTTP body.
const CHUNK: usize = 256 * 1024;

/// How much of a request body is read and discarded after a load stopped reading it.
const DRAIN_LIMIT: u64 = 1 << 30;
/// How long the rest of a request body is drained.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// A blocking writer feeding an async body in [`CHUNK`]s over a bounded channel; a gone
/// receiver (the client left) is a broken pipe.
struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChanWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.is_empty() && b.len() >= CHUNK {
            // Large writes go out as they are, without a copy into the batch buffer.
            self.tx
                .blocking_send(Ok(Bytes::copy_from_slice(b)))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
            return Ok(b.len());
        }
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Reads a request body from blocking code.
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

impl Engine {
    /// `GET /images/{name}/get`, `GET /images/get`.
    pub(crate) async fn save_images(
        &self,
        names: Vec<String>,
        oci: bool,
    ) -> Result<ByteStream, Error> {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<Vec<String>, Error>>();
        let engine = self.clone();
        let format = if oci {
            SaveFormat::Oci
        } else {
            SaveFormat::Docker
        };
        tokio::task::spawn_blocking(move || {
            let store = engine.inner.images.store();
            let plan = match store.save_plan(&names) {
                Ok(p) => p,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(plan.image_ids()));
            let mut w = ChanWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = store.save(&plan, format, &mut w) {
                tracing::warn!("image save failed: {e}");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        });
        let ids = ready_rx
            .await
            .map_err(|_| Error::internal("image save ended early"))??;
        for id in ids {
            self.inner
                .events
                .publish("image", "save", id, Default::default());
        }
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
        )))
    }

    /// `POST /images/load`.
    pub(crate) async fn load_images(
        &self,
        quiet: bool,
        body: ByteStream,
    ) -> Result<ItemStream<LoadLine>, Error> {
        let _ = quiet;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(16);
        let mut body = body;
        // Forwards the body to the load; once the load has stopped reading (done or failed),
        // drains what the client still sends (up to a limit) so that it gets to read the answer
        // instead of a reset connection.
        let mut pump = tokio::spawn(async move {
            let mut forwarding = true;
            let mut drained = 0u64;
            while let Some(chunk) = body.next().await {
                if forwarding {
                    forwarding = tx.send(chunk).await.is_ok();
                } else {
                    drained += chunk.map_or(0, |c| c.len() as u64);
                    if drained > DRAIN_LIMIT {
                        return;
                    }
                }
            }
        });
        let engine = self.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            engine.inner.images.store().load(
                BodyReader {
                    rx,
                    cur: Bytes::new(),
                },
                &LoadOptions::default(),
            )
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        if tokio::time::timeout(DRAIN_TIME, &mut pump).await.is_err() {
            pump.abort();
        }
        let loaded = loaded?;
        let mut lines = Vec::new();
        for img in &loaded {
            self.inner
                .events
                .publish("image", "load", img.id.to_string(), Default::default());
            if img.tags.is_empty() {
                lines.push(LoadLine {
                    stream: format!("Loaded image ID: {}\n", img.id),
                });
            }
            for t in &img.tags {
                lines.push(LoadLine {
                    stream: format!("Loaded image: {}\n", t.familiar()),
                });
            }
        }
        Ok(Box::pin(futures_util::stream::iter(
            lines.into_iter().map(Ok),
        )))
    }
}
