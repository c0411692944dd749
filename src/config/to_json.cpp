// to_json: the effective config as JSON, for --print-config and for records
// of what a run used. The "sim" section is written only when the config has
// one.
//
// Writes exactly the keys the readers accept for the chosen types (no
// momentum for adam, no alpha for a random shard), so the output parses back
// to the same Config. Unset optional values are written as null.
#include <nlohmann/json.hpp>

#include "sections.hpp"

namespace gossip::config {

namespace {

using detail::Json;

Json endpoint_or_null(const Endpoint& e) {
  return e.host.empty() ? Json(nullptr) : Json(e.to_string());
}
Json service_or_null(const ServiceAddress& a) {
  return a.enabled() ? Json(a.to_string()) : Json(nullptr);
}
Json positive_or_null(int64_t v) {
  return v > 0 ? Json(v) : Json(nullptr);
}

Json peer_json(const PeerConfig& p) {
  Json bootstrap = Json::array();
  for (const auto& e : p.bootstrap) bootstrap.push_back(e.to_string());
  return {{"network", p.network},
          {"listen", p.listen.to_string()},
          {"advertise", endpoint_or_null(p.advertise)},
          {"identity_key", p.identity_key.string()},
          {"swarm_key", p.swarm_key.string()},
          {"bootstrap", bootstrap},
          {"data_dir", p.data_dir.string()}};
}

Json model_json(const train::ModelSpec& m) {
  if (m.is_gpt()) {
    return {{"type", "gpt"},          {"vocab", m.gpt.vocab}, {"block", m.gpt.block},
            {"layers", m.gpt.layers}, {"heads", m.gpt.heads}, {"embd", m.gpt.embd},
            {"seed", m.seed}};
  }
  return {{"type", "mlp"},
          {"layers", m.layers},
          {"activation", train::activation_name(m.activation)},
          {"loss", train::loss_name(m.loss)},
          {"seed", m.seed}};
}

Json optimizer_json(const train::OptimizerSpec& o) {
  Json j = {{"type", train::optimizer_name(o.kind)},
            {"lr", o.lr},
            {"weight_decay", o.weight_decay},
            {"grad_clip", o.grad_clip}};
  if (o.kind == train::OptimizerKind::kSgd) {
    j["momentum"] = o.momentum;
    j["nesterov"] = o.nesterov;
  } else {
    j["beta1"] = o.beta1;
    j["beta2"] = o.beta2;
    j["eps"] = o.eps;
  }
  const train::LrSchedule& s = o.schedule;
  Json sch = {{"type", train::schedule_name(s.kind)}, {"warmup_steps", s.warmup_steps}};
  if (s.kind == train::ScheduleKind::kCosine) {
    sch["total_steps"] = s.total_steps;
    sch["min_lr"] = s.min_lr;
  } else if (s.kind == train::ScheduleKind::kStep) {
    sch["step_every"] = s.step_every;
    sch["gamma"] = s.gamma;
  }
  j["schedule"] = sch;
  return j;
}

Json strings_or_null(const std::vector<std::string>& v) {
  return v.empty() ? Json(nullptr) : Json(v);
}

Json dataset_json(const data::DatasetSpec& d) {
  Json j = {{"type", d.type}};
  if (d.type == "fashion_mnist") {
    j["dir"] = d.dir;
  } else if (d.type == "idx") {
    j["train_images"] = d.train_images;
    j["train_labels"] = d.train_labels;
    j["test_images"] = d.test_images.empty() ? Json(nullptr) : Json(d.test_images);
    j["test_labels"] = d.test_labels.empty() ? Json(nullptr) : Json(d.test_labels);
    j["classes"] = d.classes;
  } else if (d.type == "csv") {
    j["train_csv"] = d.train_csv;
    j["test_csv"] = d.test_csv.empty() ? Json(nullptr) : Json(d.test_csv);
    if (d.test_csv.empty()) j["test_fraction"] = d.test_fraction;
    j["label_column"] = d.csv.label_column.empty() ? Json(nullptr) : Json(d.csv.label_column);
    j["target_columns"] = strings_or_null(d.csv.target_columns);
    j["feature_columns"] = strings_or_null(d.csv.feature_columns);
    j["delimiter"] = std::string(1, d.csv.delimiter);
  } else if (d.type == "synthetic_regression") {
    const data::SyntheticRegressionSpec& s = d.synthetic;
    j["train_samples"] = s.train_samples;
    j["test_samples"] = s.test_samples;
    j["inputs"] = s.inputs;
    j["hidden"] = s.hidden;
    j["activation"] = s.activation;
    j["noise_std"] = s.noise_std;
    j["gain"] = s.gain;
    j["seed"] = s.seed;
  } else if (d.type == "text") {
    j["path"] = d.text_paths;
    j["val_fraction"] = d.val_fraction;
  }
  return j;
}

Json data_json(const DataConfig& d) {
  Json shard = {
      {"type", d.shard.spec.type}, {"num_shards", d.shard.num_shards}, {"index", d.shard.index}};
  if (d.shard.spec.type == "label_skew") {
    shard["alpha"] = d.shard.spec.alpha;
    shard["min_shard_size"] = d.shard.spec.min_shard_size;
  }
  const data::DatasetSpec& ds = d.dataset;
  const bool stats = !ds.mean.empty();
  return {{"dataset", dataset_json(ds)},
          {"shard", shard},
          {"batch", d.batch},
          {"seed", d.seed},
          {"normalize", ds.normalize},
          {"mean", stats ? Json(ds.mean) : Json(nullptr)},
          {"stddev", stats ? Json(ds.stddev) : Json(nullptr)},
          {"drop_last", d.drop_last}};
}

Json training_json(const TrainingConfig& t) {
  return {{"device", t.device},
          {"cpu_threads", t.cpu_threads},
          {"allow_tf32", t.allow_tf32},
          {"epochs", positive_or_null(t.epochs)},
          {"steps", positive_or_null(t.steps)},
          {"eval",
           {{"every_epochs", t.eval.every_epochs},
            {"every_steps", t.eval.every_steps},
            {"max_rows", t.eval.max_rows},
            {"batch", t.eval.batch}}}};
}

Json gossip_json(const GossipConfig& g) {
  Json weight;
  switch (g.weight) {
    case WeightMode::kSamples:
      weight = "samples";
      break;
    case WeightMode::kUniform:
      weight = "uniform";
      break;
    case WeightMode::kFixed:
      weight = g.weight_value;
      break;
  }
  return {{"interval_steps", g.interval_steps},
          {"interval_ms", g.interval_ms},
          {"wire", wire_format_name(g.wire)},
          {"exchange_timeout_ms", g.exchange_timeout_ms},
          {"weight", weight},
          {"backoff_ms", g.backoff_ms}};
}

// One event: its time key, then its event key in the shape read_sim reads.
Json sim_event_json(const SimEvent& e) {
  Json j = Json::object();
  if (e.at_step >= 0) {
    j["at_step"] = e.at_step;
  } else {
    j["at_s"] = e.at_s;
  }
  const char* name = sim_event_name(e.kind);
  switch (e.kind) {
    case SimEventKind::kKill:
    case SimEventKind::kLeave:
      j[name] = e.peers;
      break;
    case SimEventKind::kStart:
      j[name] = e.count;
      break;
    case SimEventKind::kPartition:
      j[name] = e.groups;
      break;
    case SimEventKind::kHeal:
      j[name] = true;
      break;
    case SimEventKind::kSlowLink:
      j[name] = {{"between", e.groups},
                 {"latency_ms", e.latency_ms},
                 {"bandwidth_mbit_s", e.bandwidth_mbit_s}};
      break;
    case SimEventKind::kDrop:
      j[name] = e.fraction;
      break;
  }
  return j;
}

Json sim_json(const SimConfig& s) {
  Json events = Json::array();
  for (const auto& e : s.events) events.push_back(sim_event_json(e));
  return {{"peers", s.peers},
          {"average_only", s.average_only},
          {"duration_s", s.duration_s},
          {"sample_every_s", s.sample_every_s},
          {"eval_rows", s.eval_rows},
          {"events", events},
          {"metrics_http", service_or_null(s.metrics_http)}};
}

}  // namespace

nlohmann::json to_json(const Config& c) {
  const MembershipConfig& m = c.membership;
  const NetConfig& n = c.net;
  Json j = {{"peer", peer_json(c.peer)},
            {"model", model_json(c.model)},
            {"optimizer", optimizer_json(c.optimizer)},
            {"data", data_json(c.data)},
            {"training", training_json(c.training)},
            {"gossip", gossip_json(c.gossip)},
            {"membership",
             {{"probe_interval_ms", m.probe_interval_ms},
              {"probe_timeout_ms", m.probe_timeout_ms},
              {"indirect_probes", m.indirect_probes},
              {"suspicion_mult", m.suspicion_mult},
              {"sync_interval_ms", m.sync_interval_ms},
              {"join_timeout_ms", m.join_timeout_ms}}},
            {"net",
             {{"handshake_timeout_ms", n.handshake_timeout_ms},
              {"idle_timeout_ms", n.idle_timeout_ms},
              {"max_sessions", n.max_sessions},
              {"max_pending_handshakes", n.max_pending_handshakes},
              {"max_pending_per_address", n.max_pending_per_address},
              {"max_control_frame", n.max_control_frame},
              {"cipher", n.cipher}}},
            {"checkpoint",
             {{"every_steps", c.checkpoint.every_steps},
              {"keep", c.checkpoint.keep},
              {"dir", c.checkpoint.dir.string()}}},
            {"metrics",
             {{"file", c.metrics.file.string()},
              {"every_steps", c.metrics.every_steps},
              {"progress_every_s", c.metrics.progress_every_s},
              {"http", service_or_null(c.metrics.http)}}}};
  // Only when present, so a peer config's effective form has no "sim" key.
  if (c.sim.present) j["sim"] = sim_json(c.sim);
  return j;
}

}  // namespace gossip::config
