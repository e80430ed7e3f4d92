#include "sae/sae_info.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
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
  if (d_in < 1) bad("d_in must be >= 1");
  if (d_latent < 1) bad("d_latent must be >= 1");
  if (k < 1) bad("k must be >= 1");
  if (k > d_latent) {
    bad("k " + std::to_string(k) + " is larger than d_latent " + std::to_string(d_latent));
  }
  if (dtype != "float32" && dtype != "bfloat16" && dtype != "float16") {
    bad("dtype must be float32, bfloat16 or float16, not '" + dtype + "'");
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
      {"dtype", info.dtype},
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
  write_file_atomically(file, std::as_bytes(std::span(text.data(), text.size())));
}

SaeInfo read_sae_info(const std::filesystem::path& file) {
  const std::string path = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw Error(path + ": cannot open (is this an SAE directory? it must hold sae.json)");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
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
    info.format_version = j.at("format_version").get<int>();
    if (info.format_version > SaeInfo::kFormatVersion) {
      throw DataCorruption(path, "format_version " + std::to_string(info.format_version) +
                                     " is newer than this s3attn reads (" +
                                     std::to_string(SaeInfo::kFormatVersion) + "): upgrade s3attn");
    }
    info.layers = j.at("layers").get<std::vector<int>>();
    info.d_in = j.at("d_in").get<int64_t>();
    info.d_latent = j.at("d_latent").get<int64_t>();
    info.k = j.at("k").get<int64_t>();
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
    info.dtype = j.value("dtype", std::string("float32"));
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
