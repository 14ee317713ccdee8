// parallel.cpp: set_num_threads and get_num_threads over OpenMP's runtime (see parallel.h). _OPENMP is
// defined by the compiler when it builds with OpenMP (-fopenmp); without it there is one thread.
#include "parallel.h"

#include <string>

#include "tensor.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ng {

void set_num_threads(int n) {
  if (n < 1) throw Error("set_num_threads: " + std::to_string(n) + " threads; expected at least 1");
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace ng
