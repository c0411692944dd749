// Limits that keep a peer alive under hostile or broken neighbours, and the
// counters of every refusal. Defaults are sane for a swarm of up to ~1000
// peers exchanging multi-hundred-MB blobs; tests shrink the timeouts.
// A config's "net" section fills NetConfig directly (net/options.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "gossip/crypto/noise.hpp"
#include "gossip/net/frames.hpp"

namespace gossip::net {

// Relaying (net.relay; docs/design.md "Peers behind NAT"): this peer as a
// relay for others, and as a private peer reached through one.
struct RelayConfig {
  bool enabled = true;           // serve as a relay (to peers that reserved with it)
  size_t max_circuits = 16;      // circuits open or being paired at once
  size_t max_reservations = 64;  // peers reachable through this relay at once
  // Per circuit and direction; a relay never copies faster than this.
  uint64_t max_bytes_per_s = uint64_t{8} << 20;
  std::chrono::milliseconds idle_timeout{60000};  // a circuit with no byte either way
  std::chrono::milliseconds pair_timeout{10000};  // the second half must connect by then
  // Ask public members to relay to this peer whenever its reachability
  // check finds it private (and drop them once it is public again).
  bool auto_reserve = true;
  bool reserve = false;      // ask members to relay to this peer always (an override)
  size_t reserve_count = 1;  // relays to hold a reservation with
  // A member reached only by punching or a relay is dialed directly again
  // after this long.
  std::chrono::milliseconds direct_retry{60000};
};

// TCP hole punching (net.punch).
struct PunchConfig {
  bool enabled = true;
  // Punch requests a coordinator serves per requesting peer, and punches a
  // peer starts per coordinator, each per minute; beyond: refused.
  size_t max_per_minute = 6;
  std::chrono::milliseconds delay{300};     // from PUNCH_SYNC to the simultaneous dial
  std::chrono::milliseconds attempt{3000};  // how long each side keeps dialing
};

struct NetConfig {
  // A connection must complete the Noise handshake within this time (from
  // accept, or from the start of a dial including the TCP connect).
  std::chrono::milliseconds handshake_timeout{5000};
  // An established session with nothing received for this long is closed.
  std::chrono::milliseconds idle_timeout{60000};
  // A session that sent nothing for this long sends an empty Noise message
  // (keepalive), so that a quiet but healthy peer is not closed as idle.
  // Behind a NAT it must also stay below the router's mapping timeout for
  // idle TCP connections (docs/operations.md "Peers behind NAT").
  std::chrono::milliseconds keepalive_interval{15000};
  // Ask the LAN's router for a port mapping (NAT-PMP, UPnP-IGD) at start.
  bool port_mapping = true;
  // An established session that carried no frame (keepalives do not count)
  // either way for this long is closed, so that a peer meeting many others
  // in turn does not keep a socket and buffers for each forever; 0: never.
  // Whoever needs the peer again dials it again.
  std::chrono::milliseconds unused_timeout{0};
  size_t max_pending_handshakes = 64;  // inbound, all addresses together
  size_t max_pending_per_address = 4;  // inbound, per remote IP address
  size_t max_sessions = 256;           // established + handshaking, both directions
  FrameLimits frames;                  // control frames <= 64 KiB etc.
  size_t send_queue_frames = 256;      // control frames queued before senders wait
  size_t max_batch_messages = 4;       // 64 KiB Noise messages (blob chunks) per socket write
  int socket_buffer_bytes = 0;         // SO_SNDBUF/SO_RCVBUF; 0 = kernel autotuning
  // The Noise AEAD (every peer of a swarm the same); the Node constructor
  // throws std::invalid_argument for one this CPU lacks, so check
  // crypto::check_cipher_available first.
  crypto::Cipher cipher = crypto::Cipher::kChaChaPoly;
  RelayConfig relay;
  PunchConfig punch;
};

// Plain snapshot of the counters (see NetCounters).
struct CounterSnapshot {
  uint64_t accepted = 0;                 // TCP connections accepted
  uint64_t handshakes_ok = 0;            // sessions established, both roles
  uint64_t handshake_failed = 0;         // bad message / wrong swarm key / bad key
  uint64_t handshake_timeout = 0;        // deadline passed before the handshake finished
  uint64_t refused_pending_total = 0;    // too many handshakes in flight
  uint64_t refused_pending_address = 0;  // too many handshakes from one address
  uint64_t refused_sessions = 0;         // session cap reached
  uint64_t peer_id_mismatch = 0;         // dialed peer presented another static key
  uint64_t self_connection = 0;          // remote static == own static
  uint64_t decrypt_failed = 0;           // transport message failed authentication
  uint64_t bad_frame = 0;                // frame decoder refused the stream
  uint64_t blob_refused = 0;             // upper layer refused or size mismatch
  uint64_t blob_truncated = 0;           // session ended with a blob half received
  uint64_t idle_closed = 0;              // idle timeout
  uint64_t unused_closed = 0;            // closed by unused_timeout
  uint64_t send_queue_full = 0;          // try_send_frame refused / STATUS reply dropped
  uint64_t sessions_closed = 0;
  uint64_t bytes_sent = 0;  // TCP payload bytes (ciphertext + lengths)
  uint64_t bytes_received = 0;
};

// Thread-safe counters, one set per Node. Field meanings as in CounterSnapshot.
struct NetCounters {
  std::atomic<uint64_t> accepted{0}, handshakes_ok{0}, handshake_failed{0}, handshake_timeout{0},
      refused_pending_total{0}, refused_pending_address{0}, refused_sessions{0},
      peer_id_mismatch{0}, self_connection{0}, decrypt_failed{0}, bad_frame{0}, blob_refused{0},
      blob_truncated{0}, idle_closed{0}, unused_closed{0}, send_queue_full{0}, sessions_closed{0},
      bytes_sent{0}, bytes_received{0};

  CounterSnapshot snapshot() const {
    auto g = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    return {g(accepted),
            g(handshakes_ok),
            g(handshake_failed),
            g(handshake_timeout),
            g(refused_pending_total),
            g(refused_pending_address),
            g(refused_sessions),
            g(peer_id_mismatch),
            g(self_connection),
            g(decrypt_failed),
            g(bad_frame),
            g(blob_refused),
            g(blob_truncated),
            g(idle_closed),
            g(unused_closed),
            g(send_queue_full),
            g(sessions_closed),
            g(bytes_sent),
            g(bytes_received)};
  }
};

}  // namespace gossip::net
