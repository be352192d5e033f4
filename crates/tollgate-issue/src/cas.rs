//! One compare-and-swap retry loop for every read-modify-write of a shared record: a service
//! token, an application, the key ring.
//!
//! Each attempt reads the record, applies its change and writes it back only if the record is
//! still as read (the stores' `update_token`, `update_app`, `swap_ring`). When another writer —
//! another instance sharing the store — got there first, the attempt answers `None` and the
//! loop runs it again on top of the other writer's record, so neither change is lost. If the
//! record keeps changing, the caller gets [`ManageErrorKind::Conflict`] rather than a retry
//! loop without end.

use std::future::Future;

use crate::error::{ManageError, ManageErrorKind};

/// How many times a change is re-applied when other writers keep changing the record first.
pub(crate) const ATTEMPTS: usize = 8;

/// Runs `attempt` until it answers `Some` (its write landed) or [`ATTEMPTS`] attempts have all
/// lost the race; `what` names the record in the conflict error.
pub(crate) async fn retry<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, ManageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ManageError>>,
{
    for _ in 0..ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
        tracing::debug!(
            record = what,
            "another writer changed the record first; retrying"
        );
    }
    Err(ManageError::new(
        ManageErrorKind::Conflict,
        format!("{what} kept changing under concurrent updates ({ATTEMPTS} attempts); try again"),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn retries_until_the_write_lands_then_gives_up() {
        let mut tries = 0;
        let landed = retry("record", || {
            tries += 1;
            let done = tries == 3;
            async move { Ok(done.then_some(tries)) }
        })
        .await
        .unwrap();
        assert_eq!(landed, 3);

        let mut tries = 0;
        let err = retry::<(), _, _>("record x", || {
            tries += 1;
            async { Ok(None) }
        })
        .await
        .unwrap_err();
        assert_eq!(tries, ATTEMPTS);
        assert_eq!(err.kind(), ManageErrorKind::Conflict);
        assert!(err.to_string().contains("record x"), "{err}");

        let err = retry::<(), _, _>("record", || async { Err(ManageError::invalid("bad")) })
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ManageErrorKind::InvalidArgument,
            "errors end the loop"
        );
    }
}
