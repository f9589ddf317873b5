// Multi-hop heterogeneous neighbour sampling (GraphSAGE style) on destination-sorted CSRs.
//
// Each relation r is a CSR over its destination nodes (rowptr [N_dst+1], col [E] = source ids).
// Hop h expands the nodes first reached at hop h-1 (the seeds at hop 0): for every relation
// ending in their type, each node keeps all its in-neighbours when its degree is at most
// fanouts[h], else a uniform sample of fanouts[h] of them without replacement. Randomness is a
// counter-based stream per (seed, hop, relation, destination node), so results never depend on
// the thread count or on which other nodes are in the batch. CPU only: the sampler feeds
// mini-batches from host memory; a CUDA array is rejected with a clear error.
#pragma once
#include <cstdint>
#include <vector>

#include "common.h"

namespace pygad {

struct SampleResult {
  // Per node type: global ids of the sampled nodes (seeds first, in order, then the nodes
  // first reached at hop 1, 2, ...), and the cumulative counts [L+1] after the seeds and
  // after each hop.
  std::vector<std::vector<int64_t>> nodes;
  std::vector<std::vector<int64_t>> node_counts;
  // Per relation: [2 * E'] = local source indices (into nodes[src type]) then local
  // destination indices (into nodes[dst type]); edges in hop order, and cumulative counts
  // [L+1] (0, after hop 1, ...).
  std::vector<std::vector<int64_t>> edges;
  std::vector<std::vector<int64_t>> edge_counts;
};

// fanouts[h] >= 0 neighbours per node and relation at hop h, or -1 for all of them.
SampleResult neighbor_sample(const std::vector<Array>& rowptr, const std::vector<Array>& col,
                             const std::vector<int64_t>& src_type, const std::vector<int64_t>& dst_type,
                             const std::vector<int64_t>& num_nodes, const std::vector<Array>& seeds,
                             const std::vector<int64_t>& fanouts, uint64_t seed, int threads);

// The per-node random stream: splitmix64 (Steele, Lea & Flood, "Fast splittable pseudorandom
// number generators", OOPSLA 2014) keyed by (seed, hop, relation, node).
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
inline uint64_t sample_key(uint64_t seed, int64_t hop, int64_t rel, int64_t node) {
  uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ULL);
  h = mix64(h ^ (static_cast<uint64_t>(hop + 1) * 0xD1B54A32D192ED03ULL));
  h = mix64(h ^ (static_cast<uint64_t>(rel + 1) * 0xABC98388FB8FAC03ULL));
  return mix64(h ^ static_cast<uint64_t>(node));
}
struct SplitMix64 {
  uint64_t state;
  uint64_t next() { return mix64(state += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, n) by the multiply-shift map (bias below n / 2^64).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }
};

namespace cpu {
struct RelationCSR {
  const int64_t* rowptr;
  const int64_t* col;
  int64_t num_edges;
  int64_t src_type, dst_type;
};
// Fills `out`. Returns "" on success, else a message about the first malformed CSR entry the
// sampler touched (bad pointers or source ids), or a duplicate seed.
std::string neighbor_sample(const std::vector<RelationCSR>& rels, const std::vector<int64_t>& num_nodes,
                            const std::vector<const int64_t*>& seeds, const std::vector<int64_t>& num_seeds,
                            const std::vector<int64_t>& fanouts, uint64_t seed, int threads, SampleResult& out);
}  // namespace cpu

}  // namespace pygad
