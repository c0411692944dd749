// The sections of a config file that describe what is trained and how:
// model, optimizer (with its schedule) and training; read and written here.
//
// Type-specific keys (momentum for sgd, beta1 for adam, gamma for the step
// schedule, ...) given for another type are errors rather than silently
// ignored, so a config says only what it means; the writers write the same
// keys.
#include "gossip/train/options.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/options/reader.hpp"

namespace gossip::train {

namespace {

using options::Json;
using options::Section;

// The names accepted for each "type"-like key, in the order shown to users.
const std::vector<std::string> kModelTypeNames = {"mlp", "gpt"};
const std::vector<std::string> kActivationNames = {"relu", "tanh", "gelu"};
const std::vector<std::string> kLossNames = {"softmax_cross_entropy", "mse"};
const std::vector<std::string> kOptimizerNames = {"sgd", "adam", "adamw"};
const std::vector<std::string> kScheduleNames = {"constant", "cosine", "step"};
const std::vector<std::string> kDeviceNames = {"auto", "cpu", "cuda"};

// Converts a name already checked against the table; a mismatch between the
// table and train's parser is reported rather than trusted.
template <typename Enum>
void set_enum(Section& s, const char* key, const core::Result<Enum>& parsed, Enum& out) {
  if (parsed) {
    out = parsed.value();
  } else {
    s.error(key, parsed.status().message());
  }
}

void read_layers(Section& s, ModelSpec& out) {
  const Json* v = s.value("layers");
  if (v == nullptr) {
    s.error("layers", "required: [inputs, hidden..., outputs], e.g. [784, 256, 128, 10]");
    return;
  }
  if (!v->is_array() || v->size() < 2) {
    s.error("layers", "expected an array of at least 2 layer sizes [inputs, ..., outputs], got " +
                          options::show(*v));
    return;
  }
  std::vector<int> layers;
  bool ok = true;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    const std::string key = "layers[" + std::to_string(i) + "]";
    if (!e.is_number_integer() || e.get<int64_t>() < 1 || e.get<int64_t>() > (1 << 24)) {
      s.error(key.c_str(),
              "expected a positive integer layer size (at most 16777216), got " + options::show(e));
      ok = false;
      continue;
    }
    layers.push_back(static_cast<int>(e.get<int64_t>()));
  }
  if (ok) out.layers = std::move(layers);
}

// model.type "gpt": the byte-level GPT's shape keys (gpt.hpp). Its data
// must be a byte dataset (data.dataset.type text), whose 256 byte values are
// the vocabulary.
void read_gpt(Section& s, const Task& task, GptSpec& out) {
  const struct {
    const char* key;
    int& value;
    int max;
  } keys[] = {{"vocab", out.vocab, 1 << 20},
              {"block", out.block, 1 << 16},
              {"layers", out.layers, 1024},
              {"heads", out.heads, 1024},
              {"embd", out.embd, 1 << 16}};
  for (const auto& k : keys) {
    int64_t v = k.value;
    if (s.integer(k.key, v, 1, k.max)) k.value = static_cast<int>(v);
  }
  if (task.dataset != "text") {
    s.error("type", "gpt trains on bytes: needs data.dataset.type text, got " + task.dataset);
  } else if (out.vocab != 256) {
    s.error("vocab", "a byte dataset (data.dataset.type text) has 256 values; got " +
                         std::to_string(out.vocab));
  }
  for (const char* key : {"activation", "loss"}) s.only_if(key, false, "by model type gpt");
}

}  // namespace

void read_model(Section& top, const Task& task, ModelSpec& out) {
  if (!top.has("model")) {
    top.error("model", "required section missing (at least \"layers\": [inputs, ..., outputs])");
    return;
  }
  Section s = top.child("model");
  if (!s.present()) return;
  const size_t errors_before = s.error_count();
  std::string type = "mlp";
  if (s.choice("type", kModelTypeNames, type)) {
    set_enum(s, "type", parse_model_family(type), out.family);
  }
  if (out.is_gpt()) {
    read_gpt(s, task, out.gpt);
    s.seed("seed", out.seed);
    s.finish();
    if (s.error_count() == errors_before) {
      if (const core::Status st = out.validate(); !st) s.error_named(st.message());
    }
    return;
  }
  if (task.dataset == "text") {
    s.error("type",
            "data.dataset.type text is byte-level language modelling: set model.type "
            "\"gpt\"");
  }
  read_layers(s, out);
  std::string name;
  if (s.choice("activation", kActivationNames, name)) {
    set_enum(s, "activation", parse_activation(name), out.activation);
  }
  if (s.choice("loss", kLossNames, name)) set_enum(s, "loss", parse_loss(name), out.loss);
  s.seed("seed", out.seed);
  const bool softmax = out.loss == LossKind::kSoftmaxCrossEntropy;
  if (softmax && task.regression) {
    s.error("loss", "softmax_cross_entropy needs a classification dataset; data.dataset (" +
                        task.dataset + ") is a regression task (use \"mse\")");
  } else if (!softmax && !task.regression) {
    s.error("loss", "mse needs a regression dataset; data.dataset (" + task.dataset +
                        ") has class labels (use \"softmax_cross_entropy\")");
  } else if (softmax && out.layers.size() >= 2 && out.layers.back() < 2) {
    s.error("layers", "softmax_cross_entropy needs at least 2 outputs (the last entry), got " +
                          std::to_string(out.layers.back()));
  }
  s.finish();
  if (s.error_count() == errors_before) {
    const core::Status st = out.validate();  // train's own rules, as a backstop
    if (!st) s.error_named(st.message());
  }
}

void read_optimizer(Section& top, OptimizerSpec& out) {
  Section s = top.child("optimizer");
  const size_t errors_before = s.error_count();
  std::string type = "sgd";
  if (s.choice("type", kOptimizerNames, type)) {
    set_enum(s, "type", parse_optimizer(type), out.kind);
  }
  const bool sgd = type == "sgd";
  const std::string for_type = "by optimizer type " + type;
  s.number("lr", out.lr, 0.0, true);
  if (s.only_if("momentum", sgd, for_type))
    s.number_in("momentum", out.momentum, 0, 1, false, true);
  if (s.only_if("nesterov", sgd, for_type) && s.boolean("nesterov", out.nesterov) && out.nesterov &&
      out.momentum == 0.0) {
    s.error("nesterov", "needs optimizer.momentum > 0");
  }
  s.number("weight_decay", out.weight_decay, 0.0, false);
  s.number("grad_clip", out.grad_clip, 0.0, false);
  if (s.only_if("beta1", !sgd, for_type)) s.number_in("beta1", out.beta1, 0, 1, false, true);
  if (s.only_if("beta2", !sgd, for_type)) s.number_in("beta2", out.beta2, 0, 1, false, true);
  if (s.only_if("eps", !sgd, for_type)) s.number("eps", out.eps, 0.0, true);

  Section sch = s.child("schedule");
  LrSchedule& lr = out.schedule;
  std::string kind = "constant";
  if (sch.choice("type", kScheduleNames, kind)) {
    set_enum(sch, "type", parse_schedule(kind), lr.kind);
  }
  const bool cosine = kind == "cosine";
  const bool step = kind == "step";
  const std::string for_kind = "by schedule type " + kind;
  sch.non_negative("warmup_steps", lr.warmup_steps);
  if (sch.only_if("total_steps", cosine, for_kind)) sch.non_negative("total_steps", lr.total_steps);
  if (sch.only_if("min_lr", cosine, for_kind) && sch.number("min_lr", lr.min_lr, 0.0, false) &&
      lr.min_lr > out.lr) {
    sch.error("min_lr", "must not exceed optimizer.lr (" + options::num(out.lr) + "), got " +
                            options::num(lr.min_lr));
  }
  if (sch.only_if("step_every", step, for_kind)) {
    if (!sch.has("step_every")) {
      sch.error("step_every", "required for schedule type step (updates between decays)");
    }
    sch.positive("step_every", lr.step_every);
  }
  if (sch.only_if("gamma", step, for_kind)) sch.number_in("gamma", lr.gamma, 0, 1, true, false);
  sch.finish();
  s.finish();

  if (s.error_count() == errors_before) {
    // train's own rules as a backstop; cosine's total_steps may still be 0
    // here ("the training budget", filled in by the peer).
    OptimizerSpec check = out;
    if (cosine && check.schedule.total_steps == 0) {
      check.schedule.total_steps = check.schedule.warmup_steps + 1;
    }
    const core::Status st = check.validate();
    if (!st) s.error_named(st.message());
  }
}

void read_training(Section& top, TrainingConfig& out) {
  Section s = top.child("training");
  const Json* device = s.value("device");
  if (device != nullptr && *device == "gpu") {
    s.error("device", "expected auto, cpu or cuda, got \"gpu\" (did you mean cuda?)");
  } else {
    s.choice("device", kDeviceNames, out.device);
  }
  {
    int64_t threads = out.cpu_threads;  // OpenBLAS caps its pool far below this anyway
    if (s.integer("cpu_threads", threads, 0, 1024)) out.cpu_threads = static_cast<int>(threads);
  }
  s.boolean("allow_tf32", out.allow_tf32);
  s.positive("epochs", out.epochs);
  s.positive("steps", out.steps);
  if (out.epochs > 0 && out.steps > 0) {
    s.error("steps", "set training.epochs or training.steps, not both");
  }
  Section e = s.child("eval");
  e.non_negative("every_epochs", out.eval.every_epochs);
  e.non_negative("every_steps", out.eval.every_steps);
  e.non_negative("max_rows", out.eval.max_rows);
  e.positive("batch", out.eval.batch);
  e.finish();
  // An early key that never did anything: refused with a pointer to the
  // setting that does, rather than silently accepted.
  s.only_if("log_every_s", false,
            "any more: the periodic training line is metrics.progress_every_s");
  s.finish();
}

namespace {

Json positive_or_null(int64_t v) {
  return v > 0 ? Json(v) : Json(nullptr);
}

}  // namespace

nlohmann::json model_json(const ModelSpec& m) {
  if (m.is_gpt()) {
    return {{"type", "gpt"},          {"vocab", m.gpt.vocab}, {"block", m.gpt.block},
            {"layers", m.gpt.layers}, {"heads", m.gpt.heads}, {"embd", m.gpt.embd},
            {"seed", m.seed}};
  }
  return {{"type", "mlp"},
          {"layers", m.layers},
          {"activation", activation_name(m.activation)},
          {"loss", loss_name(m.loss)},
          {"seed", m.seed}};
}

nlohmann::json optimizer_json(const OptimizerSpec& o) {
  Json j = {{"type", optimizer_name(o.kind)},
            {"lr", o.lr},
            {"weight_decay", o.weight_decay},
            {"grad_clip", o.grad_clip}};
  if (o.kind == OptimizerKind::kSgd) {
    j["momentum"] = o.momentum;
    j["nesterov"] = o.nesterov;
  } else {
    j["beta1"] = o.beta1;
    j["beta2"] = o.beta2;
    j["eps"] = o.eps;
  }
  const LrSchedule& s = o.schedule;
  Json sch = {{"type", schedule_name(s.kind)}, {"warmup_steps", s.warmup_steps}};
  if (s.kind == ScheduleKind::kCosine) {
    sch["total_steps"] = s.total_steps;
    sch["min_lr"] = s.min_lr;
  } else if (s.kind == ScheduleKind::kStep) {
    sch["step_every"] = s.step_every;
    sch["gamma"] = s.gamma;
  }
  j["schedule"] = sch;
  return j;
}

nlohmann::json training_json(const TrainingConfig& t) {
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

core::Result<ModelSpec> parse_model(const nlohmann::json& model) {
  if (!model.is_object()) return core::invalid_argument("model: expected an object");
  // read_model checks the model against its data: give it the task the
  // model trains on.
  Task task;
  const std::string type = model.value("type", std::string("mlp"));
  task.dataset = type == "gpt"                      ? "text"
                 : model.value("loss", "") == "mse" ? "synthetic_regression"
                                                    : "fashion_mnist";
  task.regression = task.dataset == "synthetic_regression";
  options::Errors errors;
  const nlohmann::json top = {{"model", model}};
  options::Section section(&top, "", std::filesystem::path("/"), errors);
  ModelSpec spec;
  read_model(section, task, spec);
  if (!errors.empty()) return core::invalid_argument(errors.list().front());
  return spec;
}

}  // namespace gossip::train
