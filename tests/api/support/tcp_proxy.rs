//! A TCP proxy in front of Redis or PostgreSQL that a test can cut (live connections dropped,
//! new ones refused: the port stops listening) and restore (listening again on the same port).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub struct TcpProxy {
    pub addr: SocketAddr,
    upstream: String,
    /// Cancelled to cut: stops the accept loop and every forwarded connection.
    live: Mutex<CancellationToken>,
}

impl TcpProxy {
    pub async fn start(upstream: &str) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let proxy = Arc::new(Self {
            addr,
            upstream: upstream.to_owned(),
            live: Mutex::new(CancellationToken::new()),
        });
        let token = proxy.live.lock().await.clone();
        tokio::spawn(serve(listener, proxy.upstream.clone(), token));
        proxy
    }

    /// `redis://127.0.0.1:<port>` through the proxy.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Drops every live connection and stops listening.
    pub async fn cut(&self) {
        self.live.lock().await.cancel();
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let mut live = self.live.lock().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the proxy port");
        *live = CancellationToken::new();
        tokio::spawn(serve(listener, self.upstream.clone(), live.clone()));
    }
}

async fn serve(listener: TcpListener, upstream: String, live: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = live.cancelled() => return, // the listener drops here: connections are refused
            accepted = listener.accept() => accepted,
        };
        let Ok((mut inbound, _)) = accepted else {
            continue;
        };
        let upstream = upstream.clone();
        let live = live.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                return;
            };
            tokio::select! {
                _ = live.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
            }
        });
    }
}
