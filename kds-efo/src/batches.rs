//! The readers as [`Stream`]s of batches, for code built on stream combinators.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use kds_client::Batch;

use crate::error::Error;

/// One `next_batch` call, owning the reader until it returns it.
type Step<R> = Pin<Box<dyn Future<Output = (Result<Option<Batch>, Error>, R)> + Send>>;

/// The batches of a reader ([`ShardReader::into_stream`](crate::ShardReader::into_stream),
/// [`StreamReader::into_stream`](crate::StreamReader::into_stream)): one `next_batch` call at
/// a time. The stream ends after the reader's last batch, or after its first error (by then
/// the reader's retries have run out).
#[must_use = "streams do nothing unless polled"]
pub struct Batches<R> {
    reader: Option<R>,
    step: Option<Step<R>>,
    next: fn(R) -> Step<R>,
}

impl<R> Batches<R> {
    pub(crate) fn new(reader: R, next: fn(R) -> Step<R>) -> Self {
        Self {
            reader: Some(reader),
            step: None,
            next,
        }
    }
}

impl<R> std::fmt::Debug for Batches<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("ended", &(self.reader.is_none() && self.step.is_none()))
            .finish()
    }
}

impl<R: Unpin> Stream for Batches<R> {
    type Item = Result<Batch, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let step = match &mut this.step {
            Some(step) => step,
            None => match this.reader.take() {
                Some(reader) => this.step.insert((this.next)(reader)),
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
