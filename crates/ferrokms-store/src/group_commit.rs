//! Group commit on SQLite's one writer connection: transactions that queue up while another
//! commits are made together, as one transaction with one fsync, and each caller is told
//! the outcome of its own. CreateKey is mostly waiting for its commit; sharing commits is
//! what lets many clients create keys faster than one fsync each.
//!
//! A transaction here is a list of statements with no reads between them, sent as one
//! multi-statement query. When a combined transaction fails, nothing of it stays, and its
//! members are run again one by one, so that one member's error (a duplicate, say) is
//! that member's alone.

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::sql::Dialect;
use crate::statement::Statement;

/// Most transactions committed together.
const MAX_MEMBERS: usize = 256;

struct Member {
    /// Positional statements, each followed by `;`.
    body: Statement,
    done: oneshot::Sender<Result<(), sqlx::Error>>,
}

pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Member>,
}

impl GroupCommit {
    /// Starts the committer on `writer`, a pool of one SQLite connection.
    pub(crate) fn start(writer: AnyPool) -> Self {
        let (queue, members) = mpsc::channel(4096);
        tokio::spawn(committer(writer, members));
        GroupCommit { queue }
    }

    /// Runs `body` (positional statements, each followed by `;`) as a transaction, returning
    /// once it committed (or failed and left nothing).
    pub(crate) async fn execute(&self, body: Statement) -> Result<(), sqlx::Error> {
        if body.failed() {
            return body
                .build()
                .map(drop)
                .map_err(|e| sqlx::Error::Protocol(e.to_string()));
        }
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Member { body, done })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        outcome.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }
}

/// `BEGIN IMMEDIATE; <bodies> COMMIT;`, the bodies copied (a member runs again alone if
/// the combined transaction fails).
fn combined(members: &[Member]) -> Option<Statement> {
    let mut all = Statement::for_dialect(Dialect::Sqlite, "BEGIN IMMEDIATE; ");
    for member in members {
        all.append_copy(&member.body)?;
    }
    all.push("COMMIT;");
    Some(all)
}

/// Runs `body` as a transaction of its own, now, on `writer`: for a caller that already
/// gathers its writes into batches (the audit log) and would only wait longer in a queue.
pub(crate) async fn commit_alone(writer: &AnyPool, body: Statement) -> Result<(), sqlx::Error> {
    run(writer, alone(body)).await
}

fn alone(body: Statement) -> Statement {
    let mut all = Statement::for_dialect(Dialect::Sqlite, "BEGIN IMMEDIATE; ");
    all.append(body);
    all.push("COMMIT;");
    all
}

async fn run(writer: &AnyPool, transaction: Statement) -> Result<(), sqlx::Error> {
    let query = transaction
        .build()
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let mut conn = writer.acquire().await?;
    let outcome = query.execute(&mut *conn).await.map(drop);
    if outcome.is_err() {
        // A statement after BEGIN failed: nothing of the transaction may stay.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    outcome
}

async fn committer(writer: AnyPool, mut queue: mpsc::Receiver<Member>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_MEMBERS {
            match queue.try_recv() {
                Ok(member) => batch.push(member),
                Err(_) => break,
            }
        }
        if batch.len() > 1 {
            if let Some(transaction) = combined(&batch) {
                if run(&writer, transaction).await.is_ok() {
                    for member in batch {
                        let _ = member.done.send(Ok(()));
                    }
                    continue;
                }
            }
        }
        for member in batch {
            let outcome = run(&writer, alone(member.body)).await;
            let _ = member.done.send(outcome);
        }
    }
}
