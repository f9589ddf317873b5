// Argument checks for the neighbour sampler. The CSR contents are checked where the sampler
// reads them (pointers of the nodes it expands, source ids it draws): a full scan of every
// relation on every mini-batch would cost more than the sampling itself.
#include "ops/sampling.h"

namespace pygad {

SampleResult neighbor_sample(const std::vector<Array>& rowptr, const std::vector<Array>& col,
                             const std::vector<int64_t>& src_type, const std::vector<int64_t>& dst_type,
                             const std::vector<int64_t>& num_nodes, const std::vector<Array>& seeds,
                             const std::vector<int64_t>& fanouts, uint64_t seed, int threads) {
  const size_t R = rowptr.size(), T = num_nodes.size();
  if (col.size() != R || src_type.size() != R || dst_type.size() != R)
    throw ValueError(cat("'rowptr', 'col', 'src_type' and 'dst_type' must have one entry per relation (", R,
                         "), got ", col.size(), ", ", src_type.size(), " and ", dst_type.size()));
  if (seeds.size() != T)
    throw ValueError(cat("'seeds' must have one array per node type (", T, "), got ", seeds.size()));
  for (size_t t = 0; t < T; ++t) check_nonneg(num_nodes[t], "num_nodes");
  for (size_t h = 0; h < fanouts.size(); ++h)
    if (fanouts[h] < -1)
      throw ValueError(cat("'fanouts' must be >= 0 (or -1 for all neighbours), got ", fanouts[h], " at hop ", h));
  auto on_cpu = [](const Array& a) {
    if (a.is_cuda())
      throw ValueError(cat("'", a.name, "' is a CUDA array; neighbour sampling runs on the CPU (move the graph "
                           "structure and seeds to host memory)"));
  };
  std::vector<cpu::RelationCSR> rels;
  for (size_t r = 0; r < R; ++r) {
    if (src_type[r] < 0 || src_type[r] >= static_cast<int64_t>(T) || dst_type[r] < 0 ||
        dst_type[r] >= static_cast<int64_t>(T))
      throw ValueError(cat("relation ", r, " has node types (", src_type[r], ", ", dst_type[r], "), outside [0, ", T,
                           ")"));
    on_cpu(rowptr[r]);
    on_cpu(col[r]);
    check_dtype(rowptr[r], DType::i64);
    check_dtype(col[r], DType::i64);
    check_shape(rowptr[r], {num_nodes[dst_type[r]] + 1});
    check_shape(col[r], {-1});
    const int64_t E = col[r].size(0);
    const int64_t* p = rowptr[r].ptr<int64_t>();
    if (p[0] != 0 || p[num_nodes[dst_type[r]]] != E)
      throw ValueError(cat("'", rowptr[r].name, "' must start at 0 and end at ", E, " (the length of '", col[r].name,
                           "'), got ", p[0], " and ", p[num_nodes[dst_type[r]]]));
    rels.push_back({p, col[r].ptr<int64_t>(), E, src_type[r], dst_type[r]});
  }
  std::vector<const int64_t*> seed_ptr(T);
  std::vector<int64_t> num_seeds(T);
  for (size_t t = 0; t < T; ++t) {
    on_cpu(seeds[t]);
    check_dtype(seeds[t], DType::i64);
    check_shape(seeds[t], {-1});
    const int64_t n = seeds[t].size(0);
    const int64_t* s = seeds[t].ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      if (s[i] < 0 || s[i] >= num_nodes[t])
        throw ValueError(cat("'", seeds[t].name, "' has node ", s[i], " at position ", i, ", outside [0, ",
                             num_nodes[t], ")"));
    seed_ptr[t] = s;
    num_seeds[t] = n;
  }
  SampleResult out;
  const std::string err =
      cpu::neighbor_sample(rels, num_nodes, seed_ptr, num_seeds, fanouts, seed, clamp_threads(threads), out);
  if (!err.empty()) throw ValueError(err);
  return out;
}

}  // namespace pygad
