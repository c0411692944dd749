// The exchange protocol's decisions (ExchangeMachine, check_offer, ...) driven
// in memory: two sides joined by one simulated connection (a FIFO queue per
// direction, like TCP), delivered in random interleavings, with kills, lost
// ACKs, refusals and timeouts injected. Each scenario checks what each side
// decided to apply against the rule of docs/design.md: a side applies only
// after validating the partner's snapshot, receiving its ACK and finishing
// its own send, and two sides that both apply conserve sum(w x) exactly.
// The real sockets are exercised by tests/integration/averaging_*_test.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gossip/averaging/exchange_machine.hpp"

using namespace gossip;
using namespace gossip::averaging;

namespace {

constexpr auto kTimeout = std::chrono::milliseconds(1000);
const TimePoint kStart = TimePoint(std::chrono::seconds(100));

enum class Kind { kReply, kBusy, kBlob, kAck, kRefuse };

struct Msg {
  Kind kind;
  RefuseCode code = RefuseCode::kUnspecified;
  std::vector<double> blob = {};
};

struct Side {
  std::string id;
  double w = 1;
  std::vector<double> x;      // live parameters
  std::vector<double> snap;   // own snapshot, once taken
  std::vector<double> other;  // partner's snapshot, once received
  std::optional<ExchangeMachine> m;
  bool alive = true;
  bool send_pending = false;    // our blob is on its way out
  bool wants_snapshot = false;  // responder: the trainer has not run yet
  bool got_valid = false, got_ack = false, sent_done = false, sent_ack = false;
  bool closing = false;  // the partner died: the close arrives after what is in flight
  bool applied = false;
  std::vector<RefuseCode> refuses_sent;
};

// Side 0 initiates, side 1 responds. q[i] holds the messages to side i.
struct Pair {
  Side s[2];
  std::deque<Msg> q[2];
  TimePoint now = kStart;
  bool corrupt_blob_to[2] = {false, false};  // the blob arriving at i fails validation
  bool drop_ack_to[2] = {false, false};
  double mass_before = 0;

  Pair(std::vector<double> x0, std::vector<double> x1, double w0, double w1) {
    s[0].id = "aaaaaaaaaaaaaaaa0";
    s[1].id = "bbbbbbbbbbbbbbbb1";
    s[0].x = std::move(x0);
    s[1].x = std::move(x1);
    s[0].w = w0;
    s[1].w = w1;
    mass_before = mass();
  }

  double mass() const {
    double m = 0;
    for (const Side& d : s) {
      for (double v : d.x) m += d.w * v;
    }
    return m;
  }

  // The initiator takes its snapshot and offers; the responder accepts.
  void offer() {
    s[0].snap = s[0].x;
    s[0].m.emplace(Role::kInitiator, 7, s[0].w, 1.0, now, kTimeout);
    s[1].m.emplace(Role::kResponder, 7, s[1].w, s[0].w, now, kTimeout);
    s[1].wants_snapshot = true;
    q[0].push_back({Kind::kReply});
  }

  void carry(int i, const Decision& d) {
    Side& me = s[i];
    const int j = 1 - i;
    if (d.send_own) {
      REQUIRE_FALSE(me.snap.empty());
      me.send_pending = true;
      if (s[j].alive) q[j].push_back({Kind::kBlob, RefuseCode::kUnspecified, me.snap});
    }
    if (d.send_ack) {
      me.sent_ack = true;
      if (s[j].alive && !drop_ack_to[j]) q[j].push_back({Kind::kAck});
    }
    if (d.refuse) {
      me.refuses_sent.push_back(*d.refuse);
      if (s[j].alive) q[j].push_back({Kind::kRefuse, *d.refuse});
    }
    if (d.ended && *d.ended == Ending::kApplied) {
      // The rule: validated, ACKed, and our own blob fully sent.
      REQUIRE(me.got_valid);
      REQUIRE(me.got_ack);
      REQUIRE(me.sent_done);
      REQUIRE_FALSE(me.applied);
      me.applied = true;
      const double scale = me.m->scale();
      for (size_t k = 0; k < me.x.size(); ++k) me.x[k] += scale * (me.other[k] - me.snap[k]);
    }
    if (d.ended) {
      CHECK(me.m->ended());
      CHECK(d.why.is_ok() == (*d.ended == Ending::kApplied));
    }
  }

  void deliver(int i) {
    Msg msg = std::move(q[i].front());
    q[i].pop_front();
    Side& me = s[i];
    switch (msg.kind) {
      case Kind::kReply:
        carry(i, me.m->on_reply(s[1].w));
        break;
      case Kind::kBusy:
        carry(i, me.m->on_busy());
        break;
      case Kind::kAck:
        me.got_ack = true;
        carry(i, me.m->on_ack());
        break;
      case Kind::kRefuse:
        carry(i, me.m->on_refuse(msg.code, "no", s[1 - i].id));
        break;
      case Kind::kBlob:
        me.other = std::move(msg.blob);
        if (corrupt_blob_to[i]) {
          carry(i, me.m->on_other_snapshot(core::corrupt("non-finite value at element 0")));
        } else {
          me.got_valid = true;
          carry(i, me.m->on_other_snapshot(core::Status::ok()));
        }
        break;
    }
  }

  // Everything that may happen next, as indices: 0/1 deliver to side 0/1,
  // 2/3 side 0/1 finishes its send, 4 the responder's trainer snapshots,
  // 5/6 side 0/1 sees its connection close.
  std::vector<int> enabled() const {
    std::vector<int> e;
    for (int i = 0; i < 2; ++i) {
      if (s[i].alive && !q[i].empty()) e.push_back(i);
      if (s[i].alive && s[i].send_pending) e.push_back(2 + i);
      if (s[i].alive && s[i].closing && q[i].empty()) e.push_back(5 + i);
    }
    if (s[1].alive && s[1].wants_snapshot) e.push_back(4);
    return e;
  }

  void step(int what) {
    if (what < 2) return deliver(what);
    if (what >= 5) {
      Side& me = s[what - 5];
      me.closing = false;
      me.send_pending = false;
      return carry(what - 5, me.m->on_closed(core::Status(core::Code::kClosed, "reset")));
    }
    if (what < 4) {
      Side& me = s[what - 2];
      me.send_pending = false;
      me.sent_done = true;
      return carry(what - 2, me.m->on_own_sent(core::Status::ok()));
    }
    s[1].wants_snapshot = false;
    s[1].snap = s[1].x;
    carry(1, s[1].m->on_own_snapshot());
  }

  // Runs random interleavings until nothing is left to do.
  void run(std::mt19937_64& rng) {
    for (auto e = enabled(); !e.empty(); e = enabled()) {
      step(e[std::uniform_int_distribution<size_t>(0, e.size() - 1)(rng)]);
    }
  }

  // Side i dies. A random prefix of what it had sent still reaches the
  // partner, then the partner sees the connection close.
  void kill(int i, std::mt19937_64& rng) {
    s[i].alive = false;
    s[i].send_pending = false;
    q[i].clear();
    q[1 - i].resize(rng() % (q[1 - i].size() + 1));
    s[1 - i].closing = true;
  }

  // Time passes beyond the deadline on both sides.
  void expire() {
    now = kStart + kTimeout;
    for (int i = 0; i < 2; ++i) {
      if (s[i].alive) carry(i, s[i].m->on_time(now));
    }
  }
};

std::vector<double> values(std::mt19937_64& rng, size_t n) {
  std::normal_distribution<double> g;
  std::vector<double> v(n);
  for (double& x : v) x = g(rng);
  return v;
}

}  // namespace

TEST_CASE("every interleaving of a clean exchange applies on both sides and conserves mass") {
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 2000; ++trial) {
    CAPTURE(trial);
    const double w0 = 1 + static_cast<double>(rng() % 1000);
    const double w1 = 1 + static_cast<double>(rng() % 1000);
    Pair p(values(rng, 16), values(rng, 16), w0, w1);
    p.offer();
    p.run(rng);
    REQUIRE(p.s[0].applied);
    REQUIRE(p.s[1].applied);
    CHECK(p.s[0].m->ending() == Ending::kApplied);
    CHECK(p.s[1].m->ending() == Ending::kApplied);
    CHECK(p.s[0].refuses_sent.empty());
    CHECK(p.s[1].refuses_sent.empty());
    CHECK(std::abs(p.mass() - p.mass_before) <= 1e-9 * (std::abs(p.mass_before) + 1e3));
    // The responder's weight reached the initiator through REPLY.
    CHECK(p.s[0].m->scale() == doctest::Approx(w1 / (w0 + w1)));
    CHECK(p.s[1].m->scale() == doctest::Approx(w0 / (w0 + w1)));
    // Nothing after the ending changes anything.
    for (int i = 0; i < 2; ++i) {
      const Decision d = p.s[i].m->on_time(kStart + 10 * kTimeout);
      CHECK_FALSE(d.ended);
      CHECK_FALSE(d.refuse);
    }
  }
}

TEST_CASE("local progress made during the exchange is kept") {
  Pair p({1, 2}, {5, 6}, 1, 3);
  p.offer();
  std::mt19937_64 rng(2);
  // Run until both snapshots are taken, then let both trainers step.
  while (p.s[1].wants_snapshot) p.step(p.enabled().front());
  for (Side& d : p.s) {
    for (double& v : d.x) v += 0.5;
  }
  p.run(rng);
  REQUIRE(p.s[0].applied);
  REQUIRE(p.s[1].applied);
  CHECK(p.mass() == doctest::Approx(p.mass_before + 0.5 * 2 * (1 + 3)));
  // x0 = x0_now + 3/4 (s1 - s0) with s = the values when the snapshots were taken.
  CHECK(p.s[0].x[0] == doctest::Approx(1.5 + 0.75 * (5 - 1)));
}

TEST_CASE("an ACK before our own blob left does not apply") {
  ExchangeMachine m(Role::kResponder, 9, 1, 1, kStart, kTimeout);
  CHECK(m.on_own_snapshot().send_own);
  CHECK(m.on_other_snapshot(core::Status::ok()).send_ack);
  CHECK_FALSE(m.on_ack().ended);  // a hostile or broken partner ACKs early
  CHECK_FALSE(m.ended());
  const Decision d = m.on_own_sent(core::Status::ok());
  REQUIRE(d.ended);
  CHECK(*d.ended == Ending::kApplied);
}

TEST_CASE("BUSY ends the initiator's exchange without a REFUSE; after REPLY it is ignored") {
  ExchangeMachine a(Role::kInitiator, 1, 1, 1, kStart, kTimeout);
  const Decision d = a.on_busy();
  REQUIRE(d.ended);
  CHECK(*d.ended == Ending::kBusy);
  CHECK(d.why.code() == core::Code::kBusy);
  CHECK_FALSE(d.refuse);  // the partner did nothing: nothing to abort

  ExchangeMachine b(Role::kInitiator, 2, 1, 1, kStart, kTimeout);
  CHECK(b.on_reply(2).send_own);
  CHECK_FALSE(b.on_busy().ended);       // stale or hostile: the exchange goes on
  CHECK_FALSE(b.on_reply(5).send_own);  // a second REPLY changes nothing
  CHECK(b.w_other() == 2);

  ExchangeMachine r(Role::kResponder, 3, 1, 1, kStart, kTimeout);
  CHECK_FALSE(r.on_busy().ended);  // a responder is never answered BUSY
}

TEST_CASE("a partner killed at any point: the survivor applies only if it was ACKed") {
  std::mt19937_64 rng(3);
  int applied_before_kill = 0, failed = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    CAPTURE(trial);
    const int victim = static_cast<int>(rng() % 2);
    const int survivor = 1 - victim;
    Pair p(values(rng, 4), values(rng, 4), 1, 2);
    p.offer();
    // A random number of random steps, then the kill.
    const int before = static_cast<int>(rng() % 12);
    for (int k = 0; k < before; ++k) {
      auto e = p.enabled();
      if (e.empty()) break;
      p.step(e[rng() % e.size()]);
    }
    p.kill(victim, rng);
    p.run(rng);
    const Side& s = p.s[survivor];
    REQUIRE(s.m->ended());
    CHECK_FALSE(s.closing);
    if (s.applied) {
      // Only if the victim had validated our blob and ACKed it before dying.
      CHECK(p.s[victim].sent_ack);
      ++applied_before_kill;
    } else {
      CHECK(s.m->ending() == Ending::kFailed);
      // The REFUSE goes nowhere (the link is gone) but is decided.
      CHECK(s.refuses_sent == std::vector<RefuseCode>{RefuseCode::kAborted});
      ++failed;
    }
  }
  // Both outcomes occur across the cut points.
  CHECK(applied_before_kill > 0);
  CHECK(failed > 0);
}

TEST_CASE("an ACK lost after the partner applied: only the partner applies, the other times out") {
  std::mt19937_64 rng(4);
  Pair p({1, 1, 1}, {3, 3, 3}, 1, 1);
  p.drop_ack_to[0] = true;  // the responder's ACK never reaches the initiator
  p.offer();
  p.run(rng);
  CHECK(p.s[1].applied);  // it had validated our blob and received our ACK
  CHECK_FALSE(p.s[0].applied);
  CHECK_FALSE(p.s[0].m->ended());  // still waiting: only time ends it
  p.expire();
  REQUIRE(p.s[0].m->ended());
  CHECK(p.s[0].m->ending() == Ending::kFailed);
  CHECK(p.s[0].refuses_sent == std::vector<RefuseCode>{RefuseCode::kTimeout});
  p.run(rng);  // the REFUSE reaches a side that has already applied: ignored
  CHECK(p.s[1].m->ending() == Ending::kApplied);
  CHECK(p.s[1].refuses_sent.empty());
  // The documented window (docs/design.md): the mass moves by exactly the
  // delta the responder applied, w1 * 1/2 * (s0 - s1) per element.
  CHECK(p.mass() == doctest::Approx(p.mass_before + 3 * 0.5 * (1 - 3)));
}

TEST_CASE("a rejected snapshot: REFUSE bad_snapshot, and neither side applies") {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 500; ++trial) {
    Pair p(values(rng, 4), values(rng, 4), 1, 1);
    const int judge = static_cast<int>(rng() % 2);
    p.corrupt_blob_to[judge] = true;
    p.offer();
    p.run(rng);
    p.expire();  // whatever is still waiting
    p.run(rng);
    CHECK_FALSE(p.s[0].applied);
    CHECK_FALSE(p.s[1].applied);
    CHECK(p.s[judge].m->ending() == Ending::kRefused);
    CHECK(p.s[judge].refuses_sent == std::vector<RefuseCode>{RefuseCode::kBadSnapshot});
    // The partner hears the REFUSE (or times out first if it never sent).
    const auto other = p.s[1 - judge].m->ending();
    CHECK((other == Ending::kRemote || other == Ending::kFailed));
    CHECK(p.mass() == doctest::Approx(p.mass_before));
  }
}

TEST_CASE("a receive error other than a bad blob is a failure, not a refusal") {
  ExchangeMachine m(Role::kInitiator, 1, 1, 1, kStart, kTimeout);
  m.on_reply(1);
  const Decision d = m.on_other_snapshot(core::Status(core::Code::kClosed, "stream cut"));
  REQUIRE(d.ended);
  CHECK(*d.ended == Ending::kFailed);
  CHECK(d.refuse == RefuseCode::kAborted);
  CHECK(d.why.message().find("receiving snapshot") != std::string::npos);
}

TEST_CASE("timeouts fire at the deadline, not before") {
  ExchangeMachine m(Role::kInitiator, 42, 1, 1, kStart, kTimeout);
  CHECK(m.deadline() == kStart + kTimeout);
  CHECK_FALSE(m.on_time(kStart + kTimeout - std::chrono::nanoseconds(1)).ended);
  const Decision d = m.on_time(kStart + kTimeout);
  REQUIRE(d.ended);
  CHECK(*d.ended == Ending::kFailed);
  CHECK(d.refuse == RefuseCode::kTimeout);
  CHECK(d.why.code() == core::Code::kTimeout);
  CHECK(d.why.message() == "exchange 42 not finished within 1000 ms");
}

TEST_CASE("REFUSE from the partner, a failed send, stop: what each decides") {
  ExchangeMachine a(Role::kInitiator, 1, 1, 1, kStart, kTimeout);
  Decision d = a.on_refuse(RefuseCode::kModelMismatch, "model mismatch: x", "cccccccccccccccc");
  REQUIRE(d.ended);
  CHECK(*d.ended == Ending::kRemote);
  CHECK_FALSE(d.refuse);  // never answer a REFUSE with one
  CHECK(d.why.message() == "partner cccccccccccc refused: model mismatch: x");

  ExchangeMachine b(Role::kInitiator, 2, 1, 1, kStart, kTimeout);
  b.on_reply(1);
  d = b.on_own_sent(core::Status(core::Code::kClosed, "socket gone"));
  REQUIRE(d.ended);
  CHECK(*d.ended == Ending::kFailed);
  CHECK(d.refuse == RefuseCode::kAborted);

  ExchangeMachine c(Role::kResponder, 3, 1, 1, kStart, kTimeout);
  d = c.on_stop();
  REQUIRE(d.ended);
  CHECK(*d.ended == Ending::kStopped);
  CHECK(d.refuse == RefuseCode::kAborted);
  CHECK_FALSE(c.on_link_error(core::internal_error("late")).ended);
}

TEST_CASE("check_offer and check_state_request refuse with a code and a reason naming both") {
  const std::string mine = fingerprint_hex(0x1111);
  Offer o{5, 0, 1.0, WireFormat::kFp32, 100, mine};
  CHECK_FALSE(check_offer(o, mine, 100, GossipMode::kParams, "partnerpartner", "selfselfself"));

  o.fingerprint = fingerprint_hex(0x2222);
  auto r = check_offer(o, mine, 100, GossipMode::kParams, "partnerpartner", "selfselfself");
  REQUIRE(r);
  CHECK(r->code == RefuseCode::kModelMismatch);
  CHECK(r->reason.rfind(kModelMismatch, 0) == 0);
  CHECK(r->reason.find(mine) != std::string::npos);
  CHECK(r->reason.find(o.fingerprint) != std::string::npos);

  o.fingerprint = mine;
  o.count = 99;
  r = check_offer(o, mine, 100, GossipMode::kParams, "p", "s");
  REQUIRE(r);
  CHECK(r->code == RefuseCode::kSizeMismatch);
  CHECK(r->reason.find("99") != std::string::npos);

  StateRequest q{6, mine, 100, 200};
  CHECK_FALSE(check_state_request(q, mine, 100, 200, GossipMode::kParams, "j", "d"));
  q.state_count = 0;
  r = check_state_request(q, mine, 100, 200, GossipMode::kParams, "j", "d");
  REQUIRE(r);
  CHECK(r->code == RefuseCode::kSizeMismatch);
  q.fingerprint = "ffff";
  r = check_state_request(q, mine, 100, 200, GossipMode::kParams, "j", "d");
  REQUIRE(r);
  CHECK(r->code == RefuseCode::kModelMismatch);

  // gossip.mode: checked after the model, before the sizes; both modes named.
  o.count = 100;
  o.mode = GossipMode::kOuter;
  o.outer_steps = 400;
  r = check_offer(o, mine, 100, GossipMode::kParams, "partnerpartner", "selfselfself");
  REQUIRE(r);
  CHECK(r->code == RefuseCode::kModeMismatch);
  CHECK(r->reason.rfind(kModeMismatch, 0) == 0);
  CHECK(r->reason.find("\"outer\"") != std::string::npos);
  CHECK(r->reason.find("\"params\"") != std::string::npos);
  CHECK_FALSE(check_offer(o, mine, 100, GossipMode::kOuter, "p", "s"));
  q = {7, mine, 100, 200, GossipMode::kOuter, 200};
  CHECK_FALSE(check_state_request(q, mine, 100, 200, GossipMode::kOuter, "j", "d"));
  r = check_state_request(q, mine, 100, 200, GossipMode::kParams, "j", "d");
  REQUIRE(r);
  CHECK(r->code == RefuseCode::kModeMismatch);
  q.outer_count = 0;  // an outer joiner that expects no outer state: sizes differ
  r = check_state_request(q, mine, 100, 200, GossipMode::kOuter, "j", "d");
  REQUIRE(r);
  CHECK(r->code == RefuseCode::kSizeMismatch);
}

TEST_CASE("a joiner reads a donor's REFUSE by its code, not by its text") {
  CHECK(fetch_refusal_status({1, "gossip mode mismatch: a", RefuseCode::kModeMismatch}).code() ==
        core::Code::kInvalidArgument);
  CHECK(fetch_refusal_status({1, "model mismatch: a vs b", RefuseCode::kModelMismatch}).code() ==
        core::Code::kInvalidArgument);
  // The same words without the code (an older peer): not a permanent refusal.
  CHECK(fetch_refusal_status({1, "model mismatch: a vs b", RefuseCode::kUnspecified}).code() ==
        core::Code::kProtocol);
  const auto st = fetch_refusal_status({1, "state size mismatch", RefuseCode::kSizeMismatch});
  CHECK(st.code() == core::Code::kProtocol);
  CHECK(st.message() == "donor refused: state size mismatch");
}
