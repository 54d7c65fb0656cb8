//===- LinearAlgebra.h - Small dense linear algebra -------------*- C++ -*-===//
//
// What the passes need to reason about weights at compile time: symmetric
// eigenvalues (router conditioning) and truncated SVDs (LoRA extraction).
// Row-major double matrices; sizes are those of weights, so the matrix
// products are blocked and multi-threaded.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_LINEARALGEBRA_H
#define MOE_SUPPORT_LINEARALGEBRA_H

#include <cstdint>
#include <vector>

namespace mlir::moe {

/// A row-major matrix.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> data;

  Matrix() = default;
  Matrix(int64_t rows, int64_t cols)
      : rows(rows), cols(cols), data(rows * cols, 0.0) {}
  double &operator()(int64_t r, int64_t c) { return data[r * cols + c]; }
  double operator()(int64_t r, int64_t c) const { return data[r * cols + c]; }
};

/// a * b.
Matrix multiply(const Matrix &a, const Matrix &b);
/// a^T * b.
Matrix multiplyTransposedLeft(const Matrix &a, const Matrix &b);
/// a * b^T.
Matrix multiplyTransposedRight(const Matrix &a, const Matrix &b);

/// Eigenvalues (descending) and eigenvectors (columns of `vectors`) of a
/// symmetric matrix, by cyclic Jacobi rotations.
void symmetricEigen(const Matrix &symmetric, std::vector<double> &values,
                    Matrix &vectors);

/// Orthonormalises the columns of `m` in place (modified Gram-Schmidt, run
/// twice for stability); columns that vanish become zero.
void orthonormalizeColumns(Matrix &m);

/// The rank-`rank` truncated SVD `a ~= u diag(s) v^T` by the randomised
/// range finder of Halko, Martinsson and Tropp with `oversample` extra
/// columns and `powerIterations` power iterations, seeded.
struct TruncatedSvd {
  Matrix u;              // [rows, rank]
  std::vector<double> s; // [rank], descending
  Matrix v;              // [cols, rank]
};
TruncatedSvd truncatedSvd(const Matrix &a, int64_t rank, int64_t oversample,
                          int64_t powerIterations, uint64_t seed);

/// The 2-norm condition number sqrt(lmax / lmin) of the Gram matrix of the
/// rows of `rows` (infinite when the rows are linearly dependent).
double rowConditionNumber(const Matrix &rows);

} // namespace mlir::moe

#endif // MOE_SUPPORT_LINEARALGEBRA_H
