// Dense passage embeddings at index time: the BM25 passages of each document (the index's own
// split, index/passage_splitter.h) embedded by a DenseEncoder on its device and handed to the
// IndexWriter, which stores them as dense.bin. Free of LibTorch.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/pipeline/documents.h"
#include "core/runtime/dense_model.h"
#include "index/index_writer.h"

namespace s3 {

// Adds the encoder's identity (compared on append and by `ask`) and directory (not compared on
// append) to an index's metadata (index_metadata.h).
void add_dense_metadata(nlohmann::json& metadata, const DenseEncoder& encoder);

// Embeds the passages of `documents`, which the writer holds as documents first_doc,
// first_doc + 1, ... (global ids), and adds their vectors to it. The writer must have been made
// with dense_dim == the encoder's dim.
DenseStats embed_passages(const DenseEncoder& encoder, index::IndexWriter& writer,
                          uint32_t first_doc, std::span<const Document> documents);

}  // namespace s3
