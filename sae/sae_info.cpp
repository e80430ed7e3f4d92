#include "sae/sae_info.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/base/file_read.h"
#include "core/base/fs_util.h"
#include "core/base/json_fields.h"
#include "sae/safetensors.h"

namespace s3::sae {
namespace {

constexpr const char* kFormatName = "s3attn-sae";

}  // namespace

std::filesystem::path sae_info_path(const std::filesystem::path& dir) {
  return dir / "sae.json";
}

std::filesystem::path layer_path(const std::filesystem::path& dir, int layer) {
  return dir / ("layer_" + std::to_string(layer) + ".safetensors");
}

void SaeInfo::validate(const std::string& path) const {
  auto bad = [&](const std::string& what) { throw DataCorruption(path, what); };
  if (format_version < 1) bad("format_version must be >= 1");
  if (layers.empty()) bad("lists no layers");
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 0) bad("layer " + std::to_string(layers[i]) + " is negative");
    if (i > 0 && layers[i] <= layers[i - 1]) bad("layers must be distinct and ascending");
  }
  if (d_in < 1 || d_in > kMaxSaeInput)
    bad("d_in must be between 1 and " + std::to_string(kMaxSaeInput));
  if (d_latent < 1 || d_latent > kMaxLatents)
    bad("d_latent must be between 1 and " + std::to_string(kMaxLatents));
  if (k < 1) bad("k must be >= 1");
  if (k > d_latent) {
    bad("k " + std::to_string(k) + " is larger than d_latent " + std::to_string(d_latent));
  }
  for (const auto& [layer, s] : stats) {
    if (std::find(layers.begin(), layers.end(), layer) == layers.end()) {
      bad("stats for layer " + std::to_string(layer) + ", which is not in layers");
    }
  }
}

std::string sae_info_to_json_string(const SaeInfo& info) {
  nlohmann::json stats = nlohmann::json::object();
  for (const auto& [layer, s] : info.stats) {
    nlohmann::json e = nlohmann::json::object();
    e["fvu"] = s.fvu ? nlohmann::json(*s.fvu) : nlohmann::json(nullptr);
    e["dead_fraction"] =
        s.dead_fraction ? nlohmann::json(*s.dead_fraction) : nlohmann::json(nullptr);
    stats[std::to_string(layer)] = e;
  }
  nlohmann::json j = {
      {"format", kFormatName},
      {"format_version", info.format_version},
      {"layers", info.layers},
      {"d_in", info.d_in},
      {"d_latent", info.d_latent},
      {"k", info.k},
      {"head_mode", std::string(to_string(info.head_mode))},
      {"model_fingerprint", info.model_fingerprint},
      {"compatible_model_fingerprints", info.compatible_model_fingerprints},
      {"dtype", s3::dtype_name(info.dtype)},
      {"training",
       {{"corpus", info.corpus},
        {"tokens", info.tokens},
        {"vectors", info.vectors},
        {"steps", info.steps},
        {"options", info.training}}},
      {"stats", stats},
  };
  return j.dump(2) + "\n";
}

void write_sae_info(const std::filesystem::path& file, const SaeInfo& info) {
  info.validate(file.string());
  const std::string text = sae_info_to_json_string(info);
  write_file_atomic(file, text, /*fsync=*/true);
}

SaeInfo read_sae_info(const std::filesystem::path& file) {
  const std::string path = file.string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    throw Error(path + ": cannot open (is this an SAE directory? it must hold sae.json)");
  const std::string text = read_regular_file(file, kMaxSaeJsonBytes, "sae.json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw DataCorruption(path, std::string("not valid JSON (") + e.what() + ")");
  }
  SaeInfo info;
  try {
    if (!j.is_object() || j.value("format", std::string()) != kFormatName) {
      throw DataCorruption(
          path,
          std::string("not an s3attn SAE description (\"format\" is not \"") + kFormatName + "\")");
    }
    // Integers strictly: nlohmann's get<int>() would read 3.5 as 3 and 2^40 as 0.
    auto integer = [&](const char* key) {
      const std::optional<int64_t> v = json_integer<int64_t>(j.at(key));
      if (!v) throw DataCorruption(path, std::string("field '") + key + "' is not an integer");
      return *v;
    };
    const int64_t version = integer("format_version");
    if (version < 1) throw DataCorruption(path, "format_version must be >= 1");
    if (version > SaeInfo::kFormatVersion) {
      throw DataCorruption(path, "format_version " + std::to_string(version) +
                                     " is newer than this s3attn reads (" +
                                     std::to_string(SaeInfo::kFormatVersion) + "): upgrade s3attn");
    }
    info.format_version = static_cast<int>(version);
    const std::optional<std::vector<int>> layers = json_integers<int>(j.at("layers"));
    if (!layers) throw DataCorruption(path, "field 'layers' is not a list of integers");
    info.layers = *layers;
    info.d_in = integer("d_in");
    info.d_latent = integer("d_latent");
    info.k = integer("k");
    const std::string mode = j.at("head_mode").get<std::string>();
    if (mode == "per-head") {
      info.head_mode = HeadMode::kPerHead;
    } else if (mode == "concat") {
      info.head_mode = HeadMode::kConcat;
    } else {
      throw DataCorruption(path, "unknown head_mode '" + mode + "'");
    }
    info.model_fingerprint = j.value("model_fingerprint", std::string());
    if (auto c = j.find("compatible_model_fingerprints"); c != j.end() && !c->is_null())
      info.compatible_model_fingerprints = c->get<std::vector<std::string>>();
    const std::string dtype = j.value("dtype", std::string("float32"));
    const std::optional<s3::DType> parsed_dtype = s3::parse_dtype(dtype);
    if (!parsed_dtype)
      throw DataCorruption(path,
                           "dtype must be one of " + dtype_choices() + ", not '" + dtype + "'");
    info.dtype = *parsed_dtype;
    if (auto t = j.find("training"); t != j.end() && t->is_object()) {
      info.corpus = t->value("corpus", std::string());
      info.tokens = t->value("tokens", int64_t{0});
      info.vectors = t->value("vectors", int64_t{0});
      info.steps = t->value("steps", int64_t{0});
      if (auto o = t->find("options"); o != t->end()) info.training = o->get<TrainerOptions>();
    }
    if (auto s = j.find("stats"); s != j.end() && s->is_object()) {
      for (auto it = s->begin(); it != s->end(); ++it) {
        LayerStats ls;
        const auto& e = it.value();
        if (e.contains("fvu") && !e["fvu"].is_null()) ls.fvu = e["fvu"].get<double>();
        if (e.contains("dead_fraction") && !e["dead_fraction"].is_null()) {
          ls.dead_fraction = e["dead_fraction"].get<double>();
        }
        info.stats[std::stoi(it.key())] = ls;
      }
    }
  } catch (const DataCorruption&) {
    throw;
  } catch (const std::exception& e) {
    // nlohmann type/key errors, std::stoi, TrainerOptions' s3::Error.
    throw DataCorruption(path, std::string("malformed sae.json (") + e.what() + ")");
  }
  info.validate(path);
  return info;
}

}  // namespace s3::sae
