//! The supervision tree of the background actors: the fraud monitor, the circuit breaker, the rate limiter, the
//! deadline queue, the mailer and the reconciler run linked to one root, which restarts any of them that crashes or is killed; each reads its state
//! back from the database as it starts (fraud windows from the purchases, pauses, the outbox, the reconcile
//! schedule). The rest of the service reaches them by name through `Named`, so it finds the restarted one.
//! (Purchase and refund actors have their own supervisor, `actors::supervisor`.)
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A supervised actor found by its registered name, wherever its latest incarnation is.
pub struct Named<M> {
    name: String,
    _message: PhantomData<fn(M)>,
}

impl<M> Clone for Named<M> {
    fn clone(&self) -> Self {
        Self { name: self.name.clone(), _message: PhantomData }
    }
}

impl<M: ractor::Message> Named<M> {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn running(&self) -> Option<ActorRef<M>> {
        ActorRef::where_is(self.name.clone())
    }

    /// Sends without waiting. While the actor is between a crash and its restart the message is dropped: these are
    /// signals (an outcome, a decline) whose loss a restarted guard makes up for by reading the database.
    pub fn cast(&self, message: M) {
        match self.running() {
            Some(actor) => {
                let _ = actor.cast(message);
            }
            None => tracing::warn!(actor = %self.name, "actor restarting: a signal to it was dropped"),
        }
    }

    /// Asks and waits up to `timeout`; `None` when the actor is down or does not answer in time.
    pub async fn call<R: Send + 'static>(
        &self,
        message: impl FnOnce(RpcReplyPort<R>) -> M,
        timeout: Duration,
    ) -> Option<R> {
        match self.running()?.call(message, Some(timeout)).await {
            Ok(CallResult::Success(answer)) => Some(answer),
            _ => None,
        }
    }
}

type Spawn = Arc<dyn Fn(ActorCell) -> Pin<Box<dyn Future<Output = Result<(), SpawnErr>> + Send>> + Send + Sync>;

/// The root of one service's background actors, with the names it gives them (unique per process: tests run several
/// services in one).
pub struct Tree {
    root: ActorRef<TreeMsg>,
    prefix: String,
}

pub enum TreeMsg {
    /// Start a child and restart it whenever it stops, until the service stops.
    Adopt { name: String, spawn: Spawn, reply: RpcReplyPort<Result<(), String>> },
    /// The service is stopping: children that stop now are not restarted.
    Stopping(RpcReplyPort<()>),
}

struct Root;

#[derive(Default)]
pub struct RootState {
    children: HashMap<String, Spawn>,
    stopping: bool,
}

impl Actor for Root {
    type Msg = TreeMsg;
    type State = RootState;
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<TreeMsg>, _: ()) -> Result<RootState, ActorProcessingErr> {
        Ok(RootState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<TreeMsg>,
        msg: TreeMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TreeMsg::Adopt { name, spawn, reply } => {
                let started = spawn(myself.get_cell()).await.map_err(|e| format!("{name}: {e}"));
                if started.is_ok() {
                    state.children.insert(name, spawn);
                }
                let _ = reply.send(started);
            }
            TreeMsg::Stopping(reply) => {
                state.stopping = true;
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<TreeMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, reason.unwrap_or_else(|| "stopped".into())),
            _ => return Ok(()),
        };
        let Some(name) = cell.get_name() else { return Ok(()) };
        let Some(spawn) = state.children.get(&name).filter(|_| !state.stopping) else { return Ok(()) };
        tracing::error!(actor = %name, %why, "background actor stopped; restarting it");
        // Its name is free once it has stopped; a few tries cover the moment the registry still holds it.
        for attempt in 0..20u64 {
            match spawn(myself.get_cell()).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(actor = %name, error = %e, attempt, "restart failed; trying again");
                    tokio::time::sleep(Duration::from_millis(10 * (attempt + 1))).await
                }
            }
        }
        tracing::error!(actor = %name, "background actor could not be restarted");
        Ok(())
    }
}

impl Tree {
    pub async fn start() -> Result<Self, String> {
        let prefix = format!("svc-{}", uuid::Uuid::new_v4().simple());
        let (root, _) = Actor::spawn(Some(format!("{prefix}:root")), Root, ())
            .await
            .map_err(|e| format!("supervision tree: {e}"))?;
        Ok(Self { root, prefix })
    }

    /// Starts `actor` under the root as `role`; it is started again, from a clone of this value, whenever it stops.
    pub async fn child<A>(&self, role: &str, actor: A) -> Result<Named<A::Msg>, String>
    where
        A: Actor<Arguments = ()> + Clone,
    {
        let name = self.name_of(role);
        let registered = name.clone();
        let spawn: Spawn = Arc::new(move |root| {
            let (actor, name) = (actor.clone(), registered.clone());
            Box::pin(async move { Actor::spawn_linked(Some(name), actor, (), root).await.map(|_| ()) })
        });
        let adopt = |reply| TreeMsg::Adopt { name: name.clone(), spawn, reply };
        match self.root.call(adopt, Some(Duration::from_secs(30))).await {
            Ok(CallResult::Success(Ok(()))) => Ok(self.named(role)),
            Ok(CallResult::Success(Err(e))) => Err(e),
            _ => Err(format!("{name}: the supervision tree did not answer")),
        }
    }

    /// The handle of the child started (or yet to be started) as `role`: for actors that others must know before
    /// it can start.
    pub fn named<M>(&self, role: &str) -> Named<M> {
        Named { name: self.name_of(role), _message: PhantomData }
    }

    /// The registered name of the child started as `role`.
    pub fn name_of(&self, role: &str) -> String {
        format!("{}:{role}", self.prefix)
    }

    /// What this service's background actors' names start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub async fn shutdown(&self) {
        let _ = self.root.call(TreeMsg::Stopping, Some(Duration::from_secs(5))).await;
        self.root.stop_children_and_wait(None, Some(Duration::from_secs(5))).await;
        self.root.stop(None);
    }
}

/// Kills the actor registered as `name`, as a crash would: it stops mid-work, and whatever supervises it brings it
/// back from the database. For the tests and the chaos harness.
pub fn crash(name: &str) -> bool {
    match ractor::registry::where_is(name) {
        Some(cell) => {
            cell.kill();
            true
        }
        None => false,
    }
}
