//! The id of the request being handled, as a task-local value: set once by
//! the request context middleware (`api::context`), read wherever an answer
//! or a log line names its request (errors, idempotency records).

use std::future::Future;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, when called while a request is being handled.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `work` as part of the request `request_id` (for work spawned on a
/// request's behalf, which does not inherit the request's task-local id).
pub async fn with_request_id<F: Future>(request_id: String, work: F) -> F::Output {
    REQUEST_ID.scope(request_id, work).await
}

/// [`with_request_id`] for the middleware: the future is returned, not awaited.
pub(super) fn scope<F: Future>(request_id: String, work: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(request_id, work)
}

/// Runs synchronous `work` as part of the request `request_id`.
pub(super) fn sync_scope<R>(request_id: String, work: impl FnOnce() -> R) -> R {
    REQUEST_ID.sync_scope(request_id, work)
}
