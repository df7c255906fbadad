//! The few rtnetlink requests the emulator makes of the kernel (what `ip -4 addr show` and
//! `ip addr add <ip>/32 dev <dev>` did, without the `ip` program, which the emulator's
//! container image does not have): list the IPv4 addresses and the links, add an address.
//! Synchronous: each is a handful of messages on a local socket, answered at once.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr};

/// One IPv4 address of an interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    pub index: u32,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
}

fn socket() -> io::Result<Socket> {
    let mut s = Socket::new(NETLINK_ROUTE)?;
    s.bind_auto()?;
    s.connect(&SocketAddr::new(0, 0))?;
    Ok(s)
}

/// Sends one request and collects the route messages answered, up to the end of a dump or the
/// acknowledgement; a negative acknowledgement is returned as the OS error it carries.
fn request(msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let s = socket()?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf[..]);
    s.send(&buf, 0)?;
    let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
    let mut out = Vec::new();
    loop {
        let (data, _) = s.recv_from_full()?;
        if data.is_empty() {
            return Ok(out);
        }
        let mut offset = 0;
        while offset < data.len() {
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = m.header.length as usize;
            match m.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => {
                    return match e.code {
                        None => Ok(out),
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    };
                }
                NetlinkPayload::InnerMessage(inner) => {
                    out.push(inner);
                    if !dump {
                        return Ok(out);
                    }
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

/// Every IPv4 address of every interface (`ip -4 addr show`).
pub fn ipv4_addresses() -> io::Result<Vec<Address>> {
    let mut query = AddressMessage::default();
    query.header.family = AddressFamily::Inet;
    let answers = request(
        RouteNetlinkMessage::GetAddress(query),
        NLM_F_REQUEST | NLM_F_DUMP,
    )?;
    Ok(answers
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) if a.header.family == AddressFamily::Inet => {
                // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on
                // point-to-point links); either is there for an ordinary one.
                let local = a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                });
                let address = a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                });
                local.or(address).map(|ip| Address {
                    index: a.header.index,
                    ip,
                    prefix_len: a.header.prefix_len,
                })
            }
            _ => None,
        })
        .collect())
}

/// Interface index and name of every link (`ip link show`).
pub fn links() -> io::Result<Vec<(u32, String)>> {
    let answers = request(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_REQUEST | NLM_F_DUMP,
    )?;
    Ok(answers
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|at| match at {
                LinkAttribute::IfName(name) => Some((l.header.index, name.clone())),
                _ => None,
            }),
            _ => None,
        })
        .collect())
}

/// The index of the interface named `name`.
pub fn index_of(name: &str) -> io::Result<Option<u32>> {
    Ok(links()?
        .into_iter()
        .find_map(|(i, n)| (n == name).then_some(i)))
}

/// Adds `ip`/`prefix_len` to interface `index` (`ip addr add`). Err(AlreadyExists) when the
/// interface has it already.
pub fn add_ipv4_address(index: u32, ip: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = prefix_len;
    msg.header.index = index;
    msg.attributes = vec![
        AddressAttribute::Local(IpAddr::V4(ip)),
        AddressAttribute::Address(IpAddr::V4(ip)),
    ];
    request(
        RouteNetlinkMessage::NewAddress(msg),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_loopback() {
        let addresses = ipv4_addresses().unwrap();
        let lo = addresses
            .iter()
            .find(|a| a.ip == Ipv4Addr::LOCALHOST)
            .expect("127.0.0.1 is listed");
        assert_eq!(lo.prefix_len, 8);
        assert_eq!(index_of("lo").unwrap(), Some(lo.index));
        assert_eq!(index_of("no-such-interface-here").unwrap(), None);
    }

    #[test]
    fn adding_an_address_that_is_there_says_so() {
        let lo = index_of("lo").unwrap().unwrap();
        // 127.0.0.1/8 is on lo already: EEXIST (needs CAP_NET_ADMIN to get that far; without
        // it the kernel answers EPERM first).
        let e = add_ipv4_address(lo, Ipv4Addr::LOCALHOST, 8).unwrap_err();
        assert!(
            e.kind() == io::ErrorKind::AlreadyExists || e.kind() == io::ErrorKind::PermissionDenied,
            "{e}"
        );
    }
}
