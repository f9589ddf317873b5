// The one Python module of pygad: converts Python array descriptors into `Array`, releases
// the GIL around every kernel call, and maps C++ errors to pygad.errors.PygadValueError /
// PygadTypeError. Every function names its arguments (py::arg), matching pygad/_C.pyi.
// Ops themselves (csrc/ops/*.cpp) check their arguments and dispatch CPU/CUDA.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "common.h"
#include "ops/csr.h"
#include "ops/diffusion_step.h"
#include "ops/hetero_attention.h"
#include "ops/sampling.h"
#include "ops/segment.h"

namespace py = pybind11;
using pygad::Array;
using pygad::DType;

namespace {

DType parse_dtype(const std::string& s, const char* name) {
  if (s == "float32") return DType::f32;
  if (s == "float64") return DType::f64;
  if (s == "int64") return DType::i64;
  if (s == "int32") return DType::i32;
  if (s == "uint8") return DType::u8;
  throw pygad::TypeError(pygad::cat("'", name, "' has unsupported dtype ", s));
}

// The Python adapters (pygad/ops/_native.py) describe each array as the tuple
// (data_ptr: int, dtype: str, shape: tuple[int, ...], device: int) with device -1 = CPU.
Array to_array(const py::handle& obj, const char* name) {
  auto t = py::reinterpret_borrow<py::tuple>(obj);
  if (t.size() != 4) throw pygad::TypeError(pygad::cat("'", name, "' is not an array descriptor"));
  Array a;
  a.name = name;
  a.data = reinterpret_cast<void*>(t[0].cast<uintptr_t>());
  a.dtype = parse_dtype(t[1].cast<std::string>(), name);
  for (auto s : t[2].cast<py::tuple>()) {
    int64_t v = s.cast<int64_t>();
    if (v < 0) throw pygad::ValueError(pygad::cat("'", name, "' has a negative dimension"));
    a.shape.push_back(v);
  }
  a.device = t[3].cast<int>();
  if (a.data == nullptr && a.numel() > 0)
    throw pygad::ValueError(pygad::cat("'", name, "' has a null data pointer"));
  return a;
}

std::vector<Array> to_arrays(const py::list& objs, const char* name) {
  std::vector<Array> out;
  out.reserve(objs.size());
  for (size_t i = 0; i < objs.size(); ++i) {
    Array a = to_array(objs[i], name);
    a.name = pygad::cat(name, "[", i, "]");
    out.push_back(std::move(a));
  }
  return out;
}

#define ARR(x) to_array(x, #x)

// Optional arrays arrive as None and reach the op as nullptr.
struct OptArray {
  Array a;
  bool has = false;
  const Array* get() const { return has ? &a : nullptr; }
};
OptArray opt(const py::object& o, const char* name) {
  OptArray r;
  if (!o.is_none()) {
    r.a = to_array(o, name);
    r.has = true;
  }
  return r;
}

// Raise pygad.errors.<cls>(msg); the plain built-in `fallback` if the package cannot be imported.
void set_error(const char* cls, PyObject* fallback, const char* msg) {
  try {
    py::object type = py::module_::import("pygad.errors").attr(cls);
    PyErr_SetString(type.ptr(), msg);
  } catch (const py::error_already_set&) {
    PyErr_SetString(fallback, msg);
  }
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pygad native kernels (C++17 + OpenMP, optional CUDA). Use pygad.ops, not this module.";

  // C++ errors become pygad.errors.PygadValueError / PygadTypeError (subclasses of ValueError /
  // TypeError), looked up when raised so that importing _C does not import the package.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const pygad::TypeError& e) {
      set_error("PygadTypeError", PyExc_TypeError, e.what());
    } catch (const pygad::ValueError& e) {
      set_error("PygadValueError", PyExc_ValueError, e.what());
    }
  });

  m.def("build_info", []() {
    py::dict d;
    d["cpu_kernels"] = std::string(pygad::cpu::attention_kernel_isa());
#ifdef PYGAD_WITH_CUDA
    d["cuda"] = true;
    d["cuda_architectures"] = std::string(PYGAD_CUDA_ARCHS);
#else
    d["cuda"] = false;
    d["cuda_architectures"] = std::string();
#endif
#ifdef PYGAD_WITH_OPENMP
    d["openmp"] = true;
    d["max_threads"] = omp_get_max_threads();
#else
    d["openmp"] = false;
    d["max_threads"] = 1;
#endif
#if defined(__clang__)
    d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = std::string("gcc ") + __VERSION__;
#else
    d["compiler"] = std::string("unknown");
#endif
    d["native_version"] = std::string(PYGAD_VERSION);
    return d;
  });

  // ---- segment ops (csrc/ops/segment.h) -------------------------------------------------
  m.def("segment_sum", [](py::tuple src, py::tuple ptr, py::tuple out, int threads, uintptr_t stream) {
    Array a = ARR(src), b = ARR(ptr), c = ARR(out);
    py::gil_scoped_release nogil;
    pygad::segment_sum(a, b, c, threads, stream);
  },
        py::arg("src"), py::arg("ptr"), py::arg("out"), py::arg("threads"), py::arg("stream"));
  m.def("segment_softmax", [](py::tuple src, py::tuple ptr, py::tuple out, int threads, uintptr_t stream) {
    Array a = ARR(src), b = ARR(ptr), c = ARR(out);
    py::gil_scoped_release nogil;
    pygad::segment_softmax(a, b, c, threads, stream);
  },
        py::arg("src"), py::arg("ptr"), py::arg("out"), py::arg("threads"), py::arg("stream"));
  m.def("segment_softmax_backward",
        [](py::tuple y, py::tuple grad_y, py::tuple ptr, py::tuple grad_src, int threads, uintptr_t stream) {
          Array a = ARR(y), b = ARR(grad_y), c = ARR(ptr), d = ARR(grad_src);
          py::gil_scoped_release nogil;
          pygad::segment_softmax_backward(a, b, c, d, threads, stream);
        },
        py::arg("y"), py::arg("grad_y"), py::arg("ptr"), py::arg("grad_src"), py::arg("threads"),
        py::arg("stream"));
  m.def("neighbor_aggregate",
        [](py::tuple x, py::tuple rowptr, py::tuple col, py::tuple out, const std::string& reduce, int threads,
           uintptr_t stream) {
          Array a = ARR(x), b = ARR(rowptr), c = ARR(col), d = ARR(out);
          py::gil_scoped_release nogil;
          pygad::neighbor_aggregate(a, b, c, d, reduce, threads, stream);
        },
        py::arg("x"), py::arg("rowptr"), py::arg("col"), py::arg("out"), py::arg("reduce"), py::arg("threads"),
        py::arg("stream"));

  // ---- heterogeneous CSR/CSC (csrc/ops/csr.h) -------------------------------------------
  m.def("hetero_csr",
        [](py::list edge_index, std::vector<int64_t> src_offset, std::vector<int64_t> num_src, int64_t num_dst,
           py::tuple rowptr, py::tuple col, py::tuple rel, py::tuple eid, int threads, uintptr_t stream) {
          auto ei = to_arrays(edge_index, "edge_index");
          Array a = ARR(rowptr), b = ARR(col), c = ARR(rel), d = ARR(eid);
          py::gil_scoped_release nogil;
          pygad::hetero_csr(ei, src_offset, num_src, num_dst, a, b, c, d, threads, stream);
        },
        py::arg("edge_index"), py::arg("src_offset"), py::arg("num_src"), py::arg("num_dst"), py::arg("rowptr"),
        py::arg("col"), py::arg("rel"), py::arg("eid"), py::arg("threads"), py::arg("stream"));
  m.def("csr_transpose",
        [](py::tuple rowptr, py::tuple col, int64_t num_cols, py::tuple colptr, py::tuple row, py::tuple perm,
           int threads, uintptr_t stream) {
          Array a = ARR(rowptr), b = ARR(col), c = ARR(colptr), d = ARR(row), e = ARR(perm);
          py::gil_scoped_release nogil;
          pygad::csr_transpose(a, b, num_cols, c, d, e, threads, stream);
        },
        py::arg("rowptr"), py::arg("col"), py::arg("num_cols"), py::arg("colptr"), py::arg("row"),
        py::arg("perm"), py::arg("threads"), py::arg("stream"));

  // ---- fused heterogeneous attention (csrc/ops/hetero_attention.h) ----------------------
  m.def("hetero_attention_forward",
        [](py::tuple q, py::tuple k, py::object v, py::tuple mu, py::tuple rowptr, py::tuple col, py::tuple rel,
           double scale, py::tuple out, py::tuple lse, py::object saved, int threads, uintptr_t stream) {
          Array a = ARR(q), b = ARR(k), d = ARR(mu), e = ARR(rowptr), f = ARR(col), g = ARR(rel), h = ARR(out),
                i = ARR(lse);
          OptArray c = opt(v, "v"), cache = opt(saved, "saved");
          py::gil_scoped_release nogil;
          pygad::hetero_attention_forward(a, b, c.get(), d, e, f, g, scale, h, i, cache.get(), threads, stream);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mu"), py::arg("rowptr"), py::arg("col"),
        py::arg("rel"), py::arg("scale"), py::arg("out"), py::arg("lse"), py::arg("saved"), py::arg("threads"),
        py::arg("stream"));
  m.def("hetero_attention_backward",
        [](py::tuple grad_out, py::tuple q, py::tuple k, py::object v, py::tuple mu, py::tuple rowptr,
           py::tuple col, py::tuple rel, py::tuple colptr, py::tuple row, py::tuple perm, double scale,
           py::tuple out, py::tuple lse, py::object saved, py::tuple grad_q, py::tuple grad_k, py::object grad_v,
           py::tuple grad_mu, int threads, uintptr_t stream) {
          Array go = ARR(grad_out), a = ARR(q), b = ARR(k), d = ARR(mu), e = ARR(rowptr), f = ARR(col),
                g = ARR(rel), h = ARR(colptr), i = ARR(row), j = ARR(perm), o = ARR(out), l = ARR(lse),
                gq = ARR(grad_q), gk = ARR(grad_k), gm = ARR(grad_mu);
          OptArray c = opt(v, "v"), cache = opt(saved, "saved"), gv = opt(grad_v, "grad_v");
          py::gil_scoped_release nogil;
          pygad::hetero_attention_backward(go, a, b, c.get(), d, e, f, g, h, i, j, scale, o, l, cache.get(), gq, gk,
                                           gv.get(), gm, threads, stream);
        },
        py::arg("grad_out"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mu"), py::arg("rowptr"),
        py::arg("col"), py::arg("rel"), py::arg("colptr"), py::arg("row"), py::arg("perm"), py::arg("scale"),
        py::arg("out"), py::arg("lse"), py::arg("saved"), py::arg("grad_q"), py::arg("grad_k"),
        py::arg("grad_v"), py::arg("grad_mu"), py::arg("threads"), py::arg("stream"));

  // ---- fused EDM diffusion steps (csrc/ops/diffusion_step.h) ----------------------------
  {
    m.def("edm_precondition",
          [](py::tuple x, py::tuple sigma, py::object sigma_hat, py::object eps, double s_noise, double sigma_data,
                int64_t repeat, py::object x_hat, py::tuple net_in, py::tuple c_noise, int threads,
                uintptr_t stream) {
            Array a = ARR(x), b = ARR(sigma), c = ARR(net_in), d = ARR(c_noise);
            OptArray sh = opt(sigma_hat, "sigma_hat"), e = opt(eps, "eps"), xh = opt(x_hat, "x_hat");
            py::gil_scoped_release nogil;
            pygad::edm_precondition(a, b, sh.get(), e.get(), s_noise, sigma_data, repeat, xh.get(), c, d, threads,
                                    stream);
          },
        py::arg("x"), py::arg("sigma"), py::arg("sigma_hat"), py::arg("eps"), py::arg("s_noise"),
        py::arg("sigma_data"), py::arg("repeat"), py::arg("x_hat"), py::arg("net_in"), py::arg("c_noise"),
        py::arg("threads"), py::arg("stream"));
    m.def("edm_step",
          [](py::tuple x, py::tuple f_cond, py::object f_uncond, py::tuple sigma, py::tuple sigma_next,
                double guidance, double sigma_data, int64_t repeat, py::tuple x_next, py::tuple deriv,
                py::object net_in_next, int threads, uintptr_t stream) {
            Array a = ARR(x), b = ARR(f_cond), c = ARR(sigma), d = ARR(sigma_next), e = ARR(x_next), f = ARR(deriv);
            OptArray fu = opt(f_uncond, "f_uncond"), ni = opt(net_in_next, "net_in_next");
            py::gil_scoped_release nogil;
            pygad::edm_step(a, b, fu.get(), c, d, guidance, sigma_data, repeat, e, f, ni.get(), threads, stream);
          },
        py::arg("x"), py::arg("f_cond"), py::arg("f_uncond"), py::arg("sigma"), py::arg("sigma_next"),
        py::arg("guidance"), py::arg("sigma_data"), py::arg("repeat"), py::arg("x_next"), py::arg("deriv"),
        py::arg("net_in_next"), py::arg("threads"), py::arg("stream"));
    m.def("edm_heun",
          [](py::tuple x_hat, py::tuple deriv, py::tuple x_next, py::tuple f_cond, py::object f_uncond,
                py::tuple sigma_hat, py::tuple sigma_next, double guidance, double sigma_data, py::tuple out,
                int threads, uintptr_t stream) {
            Array a = ARR(x_hat), b = ARR(deriv), c = ARR(x_next), d = ARR(f_cond), e = ARR(sigma_hat),
                  f = ARR(sigma_next), g = ARR(out);
            OptArray fu = opt(f_uncond, "f_uncond");
            py::gil_scoped_release nogil;
            pygad::edm_heun(a, b, c, d, fu.get(), e, f, guidance, sigma_data, g, threads, stream);
          },
        py::arg("x_hat"), py::arg("deriv"), py::arg("x_next"), py::arg("f_cond"), py::arg("f_uncond"),
        py::arg("sigma_hat"), py::arg("sigma_next"), py::arg("guidance"), py::arg("sigma_data"), py::arg("out"),
        py::arg("threads"), py::arg("stream"));
    m.def("edm_noise", [](py::tuple z0, py::tuple eps, py::tuple sigma, double sigma_data, py::tuple net_in,
                          py::tuple c_noise, int threads, uintptr_t stream) {
      Array a = ARR(z0), b = ARR(eps), c = ARR(sigma), d = ARR(net_in), e = ARR(c_noise);
      py::gil_scoped_release nogil;
      pygad::edm_noise(a, b, c, sigma_data, d, e, threads, stream);
    },
        py::arg("z0"), py::arg("eps"), py::arg("sigma"), py::arg("sigma_data"), py::arg("net_in"),
        py::arg("c_noise"), py::arg("threads"), py::arg("stream"));
    m.def("edm_loss", [](py::tuple f, py::tuple z0, py::tuple eps, py::tuple sigma, double sigma_data, py::tuple loss,
                         int threads, uintptr_t stream) {
      Array a = ARR(f), b = ARR(z0), c = ARR(eps), d = ARR(sigma), e = ARR(loss);
      py::gil_scoped_release nogil;
      pygad::edm_loss(a, b, c, d, sigma_data, e, threads, stream);
    },
        py::arg("f"), py::arg("z0"), py::arg("eps"), py::arg("sigma"), py::arg("sigma_data"), py::arg("loss"),
        py::arg("threads"), py::arg("stream"));
    m.def("edm_loss_backward",
          [](py::tuple grad_loss, py::tuple f, py::tuple z0, py::tuple eps, py::tuple sigma, double sigma_data,
             py::tuple grad_f, int threads, uintptr_t stream) {
            Array a = ARR(grad_loss), b = ARR(f), c = ARR(z0), d = ARR(eps), e = ARR(sigma), g = ARR(grad_f);
            py::gil_scoped_release nogil;
            pygad::edm_loss_backward(a, b, c, d, e, sigma_data, g, threads, stream);
          },
        py::arg("grad_loss"), py::arg("f"), py::arg("z0"), py::arg("eps"), py::arg("sigma"),
        py::arg("sigma_data"), py::arg("grad_f"), py::arg("threads"), py::arg("stream"));
  }

  // ---- neighbour sampling (csrc/ops/sampling.h) -----------------------------------------
  // Output sizes depend on the draw, so the op returns vectors; they become NumPy arrays that
  // own them (no copy).
  m.def("neighbor_sample",
        [](py::list rowptr, py::list col, std::vector<int64_t> src_type, std::vector<int64_t> dst_type,
           std::vector<int64_t> num_nodes, py::list seeds, std::vector<int64_t> fanouts, uint64_t seed,
           int threads) {
          auto rp = to_arrays(rowptr, "rowptr"), cl = to_arrays(col, "col"), sd = to_arrays(seeds, "seeds");
          pygad::SampleResult res;
          {
            py::gil_scoped_release nogil;
            res = pygad::neighbor_sample(rp, cl, src_type, dst_type, num_nodes, sd, fanouts, seed, threads);
          }
          auto own = [](std::vector<int64_t>&& v, std::vector<py::ssize_t> shape) {
            auto* heap = new std::vector<int64_t>(std::move(v));
            py::capsule free_it(heap, [](void* p) { delete static_cast<std::vector<int64_t>*>(p); });
            return py::array_t<int64_t>(shape, heap->data(), free_it);
          };
          auto many = [&](std::vector<std::vector<int64_t>>& vs, bool pairs) {
            py::list l;
            for (auto& v : vs) {
              const auto n = static_cast<py::ssize_t>(v.size());
              l.append(pairs ? own(std::move(v), {2, n / 2}) : own(std::move(v), {n}));
            }
            return l;
          };
          return py::make_tuple(many(res.nodes, false), many(res.node_counts, false), many(res.edges, true),
                                many(res.edge_counts, false));
        },
        py::arg("rowptr"), py::arg("col"), py::arg("src_type"), py::arg("dst_type"), py::arg("num_nodes"),
        py::arg("seeds"), py::arg("fanouts"), py::arg("seed"), py::arg("threads"));
}
