//! A TCP proxy the test can cut: the bot talks to PostgreSQL through it, and "the database is
//! unreachable" becomes something a test can switch on and off without stopping the real server
//! (which other tests share).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped on every cut, so open connections close too.
    generation: watch::Sender<u64>,
}

impl TcpProxy {
    /// Listens on a free port and forwards every connection to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let upstream = upstream.to_string();
        let (is_cut, gens) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    // Refused: the connection closes at once, as with a stopped server.
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut on_cut = gens.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = on_cut.changed() => {}
                    }
                });
            }
        });
        TcpProxy {
            port,
            cut,
            generation,
        }
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}
