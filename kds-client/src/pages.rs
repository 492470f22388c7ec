//! Paginated listings read to the end: shards (with ListShards' rule that later pages carry
//! only the token), streams and stream consumers. An expired token restarts the listing. Each
//! page request has the client's total timeout.

use std::collections::HashSet;

use kds_proto::model::{
    Consumer, ListShardsInput, ListStreamConsumersInput, ListStreamsInput, Shard, StreamSummary,
};
use kds_proto::types::StreamName;

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

fn is_expired_token(error: &Error) -> bool {
    error
        .service_error()
        .is_some_and(|e| e.code() == "ExpiredNextTokenException")
}

impl Client {
    /// Every shard `request` selects (its stream, filter and page size); later pages carry only
    /// the token and the page size, as ListShards requires.
    ///
    /// # Errors
    ///
    /// The first page's or a later page's error (an expired token restarts the listing up to
    /// three times).
    pub async fn list_all_shards(&self, request: &ListShardsInput) -> Result<Vec<Shard>, Error> {
        let mut restarts = 0;
        'listing: loop {
            let mut shards = Vec::new();
            let mut seen = HashSet::new();
            let mut page_request = request.clone();
            loop {
                let page = match self.send(&page_request).await {
                    Ok(page) => page,
                    Err(e)
                        if is_expired_token(&e)
                            && restarts < RESTARTS
                            && request.next_token.is_none() =>
                    {
                        restarts += 1;
                        continue 'listing;
                    }
                    Err(e) => return Err(e),
                };
                shards.extend(page.shards.unwrap_or_default());
                match next_token(page.next_token, &mut seen, "ListShards")? {
                    Some(token) => page_request = request.next_page(token),
                    None => return Ok(shards),
                }
            }
        }
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
        let mut restarts = 0;
        'listing: loop {
            let (mut names, mut summaries) = (Vec::new(), Vec::new());
            let mut seen = HashSet::new();
            let mut page_request = request.clone();
            loop {
                let page = match self.send(&page_request).await {
                    Ok(page) => page,
                    Err(e)
                        if is_expired_token(&e)
                            && restarts < RESTARTS
                            && request.next_token.is_none() =>
                    {
                        restarts += 1;
                        continue 'listing;
                    }
                    Err(e) => return Err(e),
                };
                let last = page.stream_names.last().cloned();
                names.extend(page.stream_names);
                summaries.extend(page.stream_summaries.unwrap_or_default());
                if !page.has_more_streams {
                    return Ok((names, summaries));
                }
                let mut next = ListStreamsInput::new();
                next.limit = request.limit;
                match next_token(page.next_token, &mut seen, "ListStreams")? {
                    Some(token) => next.next_token = Some(token),
                    // Older services page by the last name instead of a token.
                    None => match last {
                        Some(name)
                            if Some(&name) != page_request.exclusive_start_stream_name.as_ref() =>
                        {
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
                page_request = next;
            }
        }
    }

    /// Every consumer of the stream `request` names.
    ///
    /// # Errors
    ///
    /// As [`list_all_shards`](Self::list_all_shards).
    pub async fn list_all_stream_consumers(
        &self,
        request: &ListStreamConsumersInput,
    ) -> Result<Vec<Consumer>, Error> {
        let mut restarts = 0;
        'listing: loop {
            let mut consumers = Vec::new();
            let mut seen = HashSet::new();
            let mut page_request = request.clone();
            loop {
                let page = match self.send(&page_request).await {
                    Ok(page) => page,
                    Err(e)
                        if is_expired_token(&e)
                            && restarts < RESTARTS
                            && request.next_token.is_none() =>
                    {
                        restarts += 1;
                        continue 'listing;
                    }
                    Err(e) => return Err(e),
                };
                consumers.extend(page.consumers.unwrap_or_default());
                match next_token(page.next_token, &mut seen, "ListStreamConsumers")? {
                    Some(token) => {
                        let mut next = ListStreamConsumersInput::new(request.stream_arn.clone());
                        next.max_results = request.max_results;
                        next.next_token = Some(token);
                        page_request = next;
                    }
                    None => return Ok(consumers),
                }
            }
        }
    }
}
