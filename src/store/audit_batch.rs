//! Group commit for audit rows written on their own (read audits: a reveal, a token handed
//! out, a refused request): requests hand their row to one writer, which inserts every row
//! waiting at that moment in one statement — one commit, one fsync — and answers each request
//! only after that commit. Under load, many requests share a commit instead of queueing for
//! pool connections; alone, a request waits for exactly its own insert.
//!
//! Rows that belong to a change are not batched: they commit in the change's transaction.

use sqlx::{PgPool, QueryBuilder};
use tokio::sync::{mpsc, oneshot};

use super::audit::NewAuditRow;

/// Rows one statement inserts at most (12 parameters each, well under PostgreSQL's limit).
const MAX_BATCH: usize = 500;
/// Requests that may wait for the writer; beyond this, they wait to be queued.
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<(), String>>;

/// A handle to the writer; cheap to clone. The writer stops when every handle is gone.
#[derive(Clone)]
pub struct AuditBatcher {
    queue: mpsc::Sender<(NewAuditRow, Reply)>,
}

impl AuditBatcher {
    /// Starts the writer on `db`.
    pub fn start(db: PgPool) -> Self {
        let (queue, rows) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(db, rows));
        Self { queue }
    }

    /// Inserts `row` and returns once it is committed; the error says why it was not.
    pub async fn insert(&self, row: NewAuditRow) -> Result<(), String> {
        let (reply, committed) = oneshot::channel();
        self.queue
            .send((row, reply))
            .await
            .map_err(|_| "the audit writer has stopped".to_owned())?;
        committed
            .await
            .map_err(|_| "the audit writer stopped before the commit".to_owned())?
    }
}

async fn write_batches(db: PgPool, mut rows: mpsc::Receiver<(NewAuditRow, Reply)>) {
    while let Some(first) = rows.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rows.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let result = insert_all(&db, batch.iter().map(|(row, _)| row))
            .await
            .map_err(|e| e.to_string());
        for (_, reply) in batch {
            // A request that went away no longer waits; its row is committed all the same.
            let _ = reply.send(result.clone());
        }
    }
}

async fn insert_all<'a>(
    db: &PgPool,
    rows: impl Iterator<Item = &'a NewAuditRow>,
) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::new("");
    super::audit::push_insert(&mut q, rows);
    q.build().execute(db).await.map(|_| ())
}
