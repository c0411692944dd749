/* mpi_allreduce: the baseline for `gossip-bench averaging`. Every rank holds
 * N float32 values and the job averages them with one MPI_Allreduce (sum),
 * as data-parallel training would. One warm-up call, then `repeat` timed
 * calls, each between barriers; prints one JSON line from rank 0 with the
 * fastest and median wall time (max over ranks).
 *
 * Built by gossip-bench at run time with mpicc; run with
 *   mpirun --allow-run-as-root --mca btl self,tcp -np 8 ./mpi_allreduce N [repeat]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const long n = argc > 1 ? atol(argv[1]) : 25000000L;
  const int repeat = argc > 2 ? atoi(argv[2]) : 3;
  float* x = malloc((size_t)n * sizeof(float));
  if (!x) MPI_Abort(MPI_COMM_WORLD, 1);
  for (long i = 0; i < n; ++i) x[i] = (float)((rank + 1) * 1e-3 + (double)(i % 997) * 1e-6);
  double* times = calloc((size_t)repeat + 1, sizeof(double));
  for (int r = 0; r <= repeat; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    const float inv = 1.0f / (float)size;
    for (long i = 0; i < n; ++i) x[i] *= inv; /* the average, as gossip produces */
    double dt = MPI_Wtime() - t0, worst = 0;
    MPI_Reduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    times[r] = worst;
  }
  if (rank == 0) {
    qsort(times + 1, (size_t)repeat, sizeof(double), cmp); /* times[0] is the warm-up */
    printf(
        "{\"ranks\": %d, \"elements\": %ld, \"allreduce_s\": %.6f, \"allreduce_median_s\": %.6f, "
        "\"warmup_s\": %.6f}\n",
        size, n, times[1], times[1 + repeat / 2], times[0]);
  }
  free(times);
  free(x);
  MPI_Finalize();
  return 0;
}
