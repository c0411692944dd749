// Checkpoints: one peer's whole training state on disk, safe against crashes.
//
// A checkpoint file holds the flat parameter buffer, the flat optimizer-state
// buffer and where training stands (step, data-order position, optimizer
// steps, averaging weight), tagged with the model's fingerprint so a file
// written for another architecture is refused. The format (docs/formats.md,
// "Checkpoints"):
//
//   offset  size  field
//   0       8     magic "GOSSIPCK"
//   8       4     format version, u32 little-endian (1)
//   12      4     header length H, u32 little-endian (<= 64 KiB)
//   16      H     header: a UTF-8 JSON object (kHeaderKeys below)
//   16+H    4*P   parameters, float32 little-endian (P = param_count)
//   ...     4*S   optimizer state, float32 little-endian (S = state_count)
//   ...     4*O   outer state (gossip.mode "outer"): phi then v, float32 LE
//                 (O = outer_count, 0 or 2P; absent from older files: 0)
//   end-4   4     CRC-32 (zlib) of every byte before it, u32 little-endian
//
// CheckpointStore owns one folder: it writes ckpt-<step, 9+ digits>.bin
// files atomically (temp file in the same folder, fsync, rename, fsync of the
// folder), keeps the newest `keep`, and on start finds the newest file that
// passes every check, setting aside (renaming to *.rejected) the ones that do
// not, so a SIGKILL at any moment leaves the previous checkpoint usable. It
// holds an advisory lock on the folder so two processes never share it.
// Nothing here knows about the training loop: the solo run and the networked
// peer both use it from their trainer thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gossip/averaging/outer.hpp"
#include "gossip/core/status.hpp"
#include "gossip/data/batcher.hpp"
#include "gossip/train/model.hpp"

namespace gossip::peer {

inline constexpr char kCheckpointMagic[8] = {'G', 'O', 'S', 'S', 'I', 'P', 'C', 'K'};
inline constexpr uint32_t kCheckpointVersion = 1;
inline constexpr uint32_t kCheckpointMaxHeader = 64 * 1024;

// Everything a peer needs to continue where it stopped.
struct CheckpointState {
  int64_t step = 0;             // optimizer steps done by this peer (TrainProgress::step)
  data::DataPosition data;      // epoch and position in the shard's order
  int64_t optimizer_steps = 0;  // Backend::optimizer_steps() (Adam's t)
  double weight = 0.0;          // averaging weight w_i at the time of writing
  uint64_t fingerprint = 0;     // ModelSpec::fingerprint()
  std::string model;            // ModelSpec::describe(), for messages only
  // The config's "model" section as --print-config writes it, so that tools
  // (gossip-generate, gossip-export) can rebuild the model from the file
  // alone; null in files written before it was added.
  nlohmann::json model_spec;
  std::vector<float> params;
  std::vector<float> optimizer_state;
  // Outer mode's phi and v (averaging::Engine::outer_state()); empty in
  // params mode and in files written before the outer mode.
  averaging::OuterState outer;
};

// What a checkpoint must match to be resumed by this peer.
struct CheckpointExpect {
  uint64_t fingerprint = 0;
  std::string model;  // ModelSpec::describe(), named in the refusal message
  size_t param_count = 0;
  size_t state_count = 0;
};

// The file bytes for `state` (format above). Pure; any thread.
std::vector<uint8_t> encode_checkpoint(const CheckpointState& state);

// Parses and verifies file bytes: magic, version, header, size, CRC, then
// (when `expect` is given) fingerprint and buffer sizes. Errors are
// core::Code::kCorrupt with the reason ("truncated: 812 of 1044 bytes",
// "checksum mismatch", "written for model 10-20-1 tanh mse (fingerprint
// 0x...), this config's model is ..."). Pure; any thread.
core::Result<CheckpointState> decode_checkpoint(std::span<const uint8_t> bytes,
                                                const CheckpointExpect* expect = nullptr);

// Reads and decodes one file; errors as decode_checkpoint, plus kNotFound /
// kIo from the file system, the message starting with the file name.
core::Result<CheckpointState> read_checkpoint_file(const std::filesystem::path& file,
                                                   const CheckpointExpect* expect = nullptr);

// A checkpoint with the model it was written for, for tools that have no
// config (gossip-generate, gossip-export).
struct CheckpointWithModel {
  CheckpointState state;
  train::ModelSpec model;
};

// Reads `file` (errors as read_checkpoint_file) and rebuilds its model from
// the header's model_spec: kInvalidArgument naming the file when the header
// has none (written before it was recorded), describes a model this build
// refuses, or one whose fingerprint is not the file's.
core::Result<CheckpointWithModel> read_checkpoint_with_model(const std::filesystem::path& file);

// "ckpt-000001234.bin" for step 1234 (at least nine digits).
std::string checkpoint_file_name(int64_t step);
// The step in a checkpoint file name, or nullopt for any other name (temp
// files and set-aside files included).
std::optional<int64_t> checkpoint_step_from_name(const std::string& name);

// One resumable checkpoint found by CheckpointStore::load_newest().
struct LoadedCheckpoint {
  CheckpointState state;
  std::filesystem::path file;
};

class CheckpointStore {
 public:
  // Creates `dir` if needed, takes its lock, and removes temp files left by
  // an interrupted write. kUnavailable when another process holds the lock,
  // kIo when the folder cannot be created or written.
  static core::Result<CheckpointStore> open(const std::filesystem::path& dir, int keep,
                                            CheckpointExpect expect);

  CheckpointStore(CheckpointStore&& other) noexcept;
  CheckpointStore& operator=(CheckpointStore&& other) noexcept;
  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;
  ~CheckpointStore();  // releases the lock

  // The newest checkpoint that passes every check, or nullopt when there is
  // none. Each unusable newer file is logged as a warning naming the file and
  // the reason, and renamed to <name>.rejected so that it is neither retried
  // nor counted by pruning; `rejected()` lists those messages afterwards.
  // Logs which file is resumed, or that the peer starts fresh and why.
  std::optional<LoadedCheckpoint> load_newest();

  // Writes `state` as checkpoint_file_name(state.step) atomically, then
  // deletes all but the newest `keep` checkpoints. On failure the previous
  // checkpoints are untouched and the temp file is removed. Returns the path.
  core::Result<std::filesystem::path> save(const CheckpointState& state);

  // Checkpoint files in the folder, newest (highest step) first.
  std::vector<std::filesystem::path> list() const;

  const std::filesystem::path& dir() const { return dir_; }
  const CheckpointExpect& expect() const { return expect_; }
  const std::vector<std::string>& rejected() const { return rejected_; }

 private:
  CheckpointStore(std::filesystem::path dir, int keep, CheckpointExpect expect, int lock_fd);
  void prune(const std::filesystem::path& keep_file);

  std::filesystem::path dir_;
  int keep_ = 1;
  CheckpointExpect expect_;
  int lock_fd_ = -1;
  std::vector<std::string> rejected_;
};

// Writes `bytes` to `file` so that a crash at any moment leaves either the
// old file (or none) or the complete new one: temp file in the same folder,
// fsync, rename over `file`, fsync of the folder. Errors are kIo naming the
// file and the system error.
core::Status write_file_atomically(const std::filesystem::path& file,
                                   std::span<const uint8_t> bytes);

}  // namespace gossip::peer
