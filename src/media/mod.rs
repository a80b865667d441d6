//! Media: RTP ports owned by the router. The media engine (prompts, RFC 4733
//! DTMF, bridge, recorder) builds on these sockets.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Hands out RTP/RTCP port pairs from the configured range.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    cursor: AtomicU32,
}

/// A bound RTP socket (and its RTCP neighbour), released on drop.
#[derive(Debug)]
pub struct RtpPort {
    rtp: UdpSocket,
    _rtcp: Option<UdpSocket>,
}

impl RtpPort {
    /// The local RTP address.
    pub fn addr(&self) -> SocketAddr {
        self.rtp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// No port of the range could be bound.
#[derive(Debug, thiserror::Error)]
#[error("no free RTP port in {ip} {min}-{max}; fix: widen media.rtp_port_min..rtp_port_max")]
pub struct PortsExhausted {
    ip: IpAddr,
    min: u16,
    max: u16,
}

impl PortPool {
    /// A pool over `min..=max` on `ip`.
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Arc<PortPool> {
        Arc::new(PortPool {
            ip,
            min,
            max,
            cursor: AtomicU32::new(0),
        })
    }

    /// Binds the next free even port (RTP) and, when free, the odd one above it (RTCP).
    pub fn allocate(&self) -> Result<RtpPort, PortsExhausted> {
        let first = self.min + (self.min % 2);
        let pairs = (u32::from(self.max.saturating_sub(first)) / 2 + 1).max(1);
        for _ in 0..pairs {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % pairs;
            let port = first + (i * 2) as u16;
            if port > self.max {
                continue;
            }
            if let Ok(rtp) = UdpSocket::bind((self.ip, port)) {
                let rtcp = port
                    .checked_add(1)
                    .filter(|p| *p <= self.max)
                    .and_then(|p| UdpSocket::bind((self.ip, p)).ok());
                return Ok(RtpPort { rtp, _rtcp: rtcp });
            }
        }
        Err(PortsExhausted {
            ip: self.ip,
            min: self.min,
            max: self.max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_even_ports_and_reuses_freed_ones() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41000, 41007);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_ne!(a.addr().port(), b.addr().port());
        assert_eq!(a.addr().port() % 2, 0);
        let c = pool.allocate().unwrap();
        let d = pool.allocate().unwrap();
        assert!(pool.allocate().is_err());
        drop((a, b, c));
        assert!(pool.allocate().is_ok());
        drop(d);
    }
}
