//! Accepted gRPC connections, tuned for many small RPCs. tonic applies `tcp_nodelay` only to
//! listeners it binds itself, and the daemon binds its own (to report a taken port): without
//! TCP_NODELAY every answer waited for the client's delayed ACK (about 40 ms an RPC).
use std::{io, time::Duration};

use futures::{Stream, StreamExt};
use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tracing::warn;

/// Idle time before TCP keep-alive probes: a vanished client's connection is noticed.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The listener's connections, each with TCP_NODELAY and TCP keep-alive set.
pub fn accept(listener: TcpListener) -> impl Stream<Item = io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        // A connection whose options cannot be set still works, only slower: keep it.
        if let Err(e) = stream.set_nodelay(true).and_then(|()| {
            SockRef::from(&stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(TCP_KEEPALIVE))
        }) {
            warn!(error = %e, "cannot tune an accepted connection");
        }
        Ok(stream)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nodelay_and_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = Box::pin(accept(listener));
        let _client = TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is set");
        let socket = SockRef::from(&accepted);
        assert!(socket.keepalive().unwrap(), "SO_KEEPALIVE is set");
        assert_eq!(socket.tcp_keepalive_time().unwrap(), TCP_KEEPALIVE);
    }
}
