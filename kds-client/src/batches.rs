//! The readers as [`Stream`]s of batches, for code built on stream combinators.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;

use crate::cursor::Batch;

/// A reader of batches: [`PollingReader`](crate::PollingReader), [`FanIn`](crate::FanIn), and
/// kds-efo's readers.
pub trait ReadBatches: Send + Sized + 'static {
    /// The error of a failed read.
    type Error: Send + 'static;

    /// The next batch; `None` once reading is over.
    fn next_batch(&mut self) -> impl Future<Output = Result<Option<Batch>, Self::Error>> + Send;

    /// The reader as a [`Stream`] of batches.
    fn into_stream(self) -> Batches<Self> {
        Batches {
            reader: Some(self),
            step: None,
        }
    }
}

/// One `next_batch` call, owning the reader until it returns it.
type Step<R> =
    Pin<Box<dyn Future<Output = (Result<Option<Batch>, <R as ReadBatches>::Error>, R)> + Send>>;

/// The batches of a reader ([`ReadBatches::into_stream`]): one `next_batch` call at a time.
/// The stream ends after the reader's last batch, or after its first error: the reader is
/// dropped then, even one whose next call would have resumed the failed shard (use the reader
/// itself to go on after errors).
#[must_use = "streams do nothing unless polled"]
pub struct Batches<R: ReadBatches> {
    reader: Option<R>,
    step: Option<Step<R>>,
}

impl<R: ReadBatches> std::fmt::Debug for Batches<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("ended", &(self.reader.is_none() && self.step.is_none()))
            .finish()
    }
}

impl<R: ReadBatches> Stream for Batches<R> {
    type Item = Result<Batch, R::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let step = match &mut this.step {
            Some(step) => step,
            None => match this.reader.take() {
                Some(mut reader) => this.step.insert(Box::pin(async move {
                    let next = reader.next_batch().await;
                    (next, reader)
                })),
                None => return Poll::Ready(None),
            },
        };
        let (result, reader) = ready!(step.as_mut().poll(cx));
        this.step = None;
        Poll::Ready(match result {
            Ok(Some(batch)) => {
                this.reader = Some(reader);
                Some(Ok(batch))
            }
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        })
    }
}

// Nothing is pinned structurally: the step is boxed, and the reader is moved only while no
// step holds it.
impl<R: ReadBatches> Unpin for Batches<R> {}
