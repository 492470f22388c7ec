//! Paginated listings read to the end: shards (with ListShards' rule that later pages carry
//! only the token), streams and stream consumers. An expired token restarts the listing. Each
//! page request has the client's total timeout.

use std::collections::HashSet;

use kds_proto::model::{
    Consumer, ListShardsInput, ListStreamConsumersInput, ListStreamsInput, Shard, StreamSummary,
};
use kds_proto::types::StreamName;
use kds_proto::{ErrorCode, Request};

use crate::client::Client;
use crate::error::{Error, ErrorKind};

/// How often an expired page token restarts a listing before the error is returned.
const RESTARTS: u32 = 3;

/// The next token, unless it was seen before (a service that loops would page forever).
fn next_token(
    token: Option<String>,
    seen: &mut HashSet<String>,
    operation: &'static str,
) -> Result<Option<String>, Error> {
    match token {
        Some(token) if !seen.insert(token.clone()) => Err(Error::new(
            ErrorKind::Decode,
            "the service returned a page token it had returned before",
        )
        .in_operation(operation)),
        token => Ok(token),
    }
}

impl Client {
    /// Reads every page of a listing into `A`, from `first` on: `step` adds a page to the
    /// listing and gives the request for the next page, or `None` after the last. An expired
    /// token starts the listing again from `first` (unless `first` carries a token of its own).
    async fn read_listing<Q: Request + Clone, A: Default>(
        &self,
        first: &Q,
        first_has_token: bool,
        mut step: impl FnMut(&Q, Q::Response, &mut A, &mut HashSet<String>) -> Result<Option<Q>, Error>,
    ) -> Result<A, Error> {
        let mut restarts = 0;
        'listing: loop {
            let mut listing = A::default();
            let mut seen = HashSet::new();
            let mut request = first.clone();
            loop {
                let page = match self.send(&request).await {
                    Ok(page) => page,
                    Err(e)
                        if e.error_code() == Some(ErrorCode::ExpiredNextToken)
                            && restarts < RESTARTS
                            && !first_has_token =>
                    {
                        restarts += 1;
                        continue 'listing;
                    }
                    Err(e) => return Err(e),
                };
                match step(&request, page, &mut listing, &mut seen)? {
                    Some(next) => request = next,
                    None => return Ok(listing),
                }
            }
        }
    }

    /// Every shard `request` selects (its stream, filter and page size); later pages carry only
    /// the token and the page size, as ListShards requires.
    ///
    /// # Errors
    ///
    /// The first page's or a later page's error (an expired token restarts the listing up to
    /// three times).
    pub async fn list_all_shards(&self, request: &ListShardsInput) -> Result<Vec<Shard>, Error> {
        self.read_listing(
            request,
            request.next_token.is_some(),
            |_, page, shards: &mut Vec<Shard>, seen| {
                shards.extend(page.shards.unwrap_or_default());
                Ok(next_token(page.next_token, seen, "ListShards")?
                    .map(|token| request.next_page(token)))
            },
        )
        .await
    }

    /// Every stream, with its summary when the service sends summaries.
    ///
    /// # Errors
    ///
    /// As [`list_all_shards`](Self::list_all_shards).
    pub async fn list_all_streams(
        &self,
        request: &ListStreamsInput,
    ) -> Result<(Vec<StreamName>, Vec<StreamSummary>), Error> {
        self.read_listing(
            request,
            request.next_token.is_some(),
            |sent, page, (names, summaries): &mut (Vec<StreamName>, Vec<StreamSummary>), seen| {
                let last = page.stream_names.last().cloned();
                names.extend(page.stream_names);
                summaries.extend(page.stream_summaries.unwrap_or_default());
                if !page.has_more_streams {
                    return Ok(None);
                }
                let mut next = ListStreamsInput::new();
                next.limit = request.limit;
                match next_token(page.next_token, seen, "ListStreams")? {
                    Some(token) => next.next_token = Some(token),
                    // Older services page by the last name instead of a token; it must advance.
                    None => match last {
                        Some(name) if Some(&name) != sent.exclusive_start_stream_name.as_ref() => {
                            next.exclusive_start_stream_name = Some(name);
                        }
                        _ => {
                            return Err(Error::new(
                                ErrorKind::Decode,
                                "the service says more streams follow but pages no further",
                            )
                            .in_operation("ListStreams"));
                        }
                    },
                }
                Ok(Some(next))
            },
        )
        .await
    }

    /// Every consumer of the stream `request` names; later pages name the stream again with
    /// the token.
    ///
    /// # Errors
    ///
    /// As [`list_all_shards`](Self::list_all_shards).
    pub async fn list_all_stream_consumers(
        &self,
        request: &ListStreamConsumersInput,
    ) -> Result<Vec<Consumer>, Error> {
        self.read_listing(
            request,
            request.next_token.is_some(),
            |_, page, consumers: &mut Vec<Consumer>, seen| {
                consumers.extend(page.consumers.unwrap_or_default());
                Ok(
                    next_token(page.next_token, seen, "ListStreamConsumers")?.map(|token| {
                        let mut next = ListStreamConsumersInput::new(request.stream_arn.clone());
                        next.max_results = request.max_results;
                        next.next_token = Some(token);
                        next
                    }),
                )
            },
        )
        .await
    }
}
