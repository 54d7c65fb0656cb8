//===- LinearAlgebra.cpp - Small dense linear algebra ---------------------===//

#include "moe/Support/LinearAlgebra.h"

#include "moe/Weights/Random.h"

#include "llvm/Support/Parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

using namespace mlir::moe;

/// Rows of the result are independent: split them over threads.
template <typename RowFn> static void forEachRow(int64_t rows, RowFn &&fn) {
  llvm::parallelFor(0, rows, [&](size_t row) { fn(int64_t(row)); });
}

Matrix mlir::moe::multiply(const Matrix &a, const Matrix &b) {
  Matrix c(a.rows, b.cols);
  forEachRow(a.rows, [&](int64_t i) {
    double *out = &c.data[i * c.cols];
    for (int64_t k = 0; k < a.cols; ++k) {
      double scale = a(i, k);
      if (scale == 0)
        continue;
      const double *row = &b.data[k * b.cols];
      for (int64_t j = 0; j < b.cols; ++j)
        out[j] += scale * row[j];
    }
  });
  return c;
}

Matrix mlir::moe::multiplyTransposedRight(const Matrix &a, const Matrix &b) {
  Matrix c(a.rows, b.rows);
  forEachRow(a.rows, [&](int64_t i) {
    const double *left = &a.data[i * a.cols];
    for (int64_t j = 0; j < b.rows; ++j) {
      const double *right = &b.data[j * b.cols];
      double sum = 0;
      for (int64_t k = 0; k < a.cols; ++k)
        sum += left[k] * right[k];
      c(i, j) = sum;
    }
  });
  return c;
}

Matrix mlir::moe::multiplyTransposedLeft(const Matrix &a, const Matrix &b) {
  // (a^T b)[i, j] = sum_k a[k, i] b[k, j]: accumulate row k of b into row i.
  Matrix c(a.cols, b.cols);
  forEachRow(a.cols, [&](int64_t i) {
    double *out = &c.data[i * c.cols];
    for (int64_t k = 0; k < a.rows; ++k) {
      double scale = a(k, i);
      if (scale == 0)
        continue;
      const double *row = &b.data[k * b.cols];
      for (int64_t j = 0; j < b.cols; ++j)
        out[j] += scale * row[j];
    }
  });
  return c;
}

void mlir::moe::symmetricEigen(const Matrix &symmetric,
                               std::vector<double> &values, Matrix &vectors) {
  int64_t n = symmetric.rows;
  Matrix a = symmetric;
  vectors = Matrix(n, n);
  for (int64_t i = 0; i < n; ++i)
    vectors(i, i) = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double offDiagonal = 0, total = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        total += a(i, j) * a(i, j);
        if (i != j)
          offDiagonal += a(i, j) * a(i, j);
      }
    if (offDiagonal <= 1e-30 * total || offDiagonal == 0)
      break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        if (a(p, q) == 0)
          continue;
        double theta = (a(q, q) - a(p, p)) / (2 * a(p, q));
        double t = (theta >= 0 ? 1.0 : -1.0) /
                   (std::fabs(theta) + std::sqrt(theta * theta + 1));
        double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {
          double akp = a(k, p), akq = a(k, q);
          a(k, p) = c * akp - s * akq;
          a(k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {
          double apk = a(p, k), aqk = a(q, k);
          a(p, k) = c * apk - s * aqk;
          a(q, k) = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {
          double vkp = vectors(k, p), vkq = vectors(k, q);
          vectors(k, p) = c * vkp - s * vkq;
          vectors(k, q) = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t x, int64_t y) { return a(x, x) > a(y, y); });
  values.resize(n);
  Matrix sorted(n, n);
  for (int64_t j = 0; j < n; ++j) {
    values[j] = a(order[j], order[j]);
    for (int64_t i = 0; i < n; ++i)
      sorted(i, j) = vectors(i, order[j]);
  }
  vectors = std::move(sorted);
}

void mlir::moe::orthonormalizeColumns(Matrix &m) {
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t j = 0; j < m.cols; ++j) {
      for (int64_t k = 0; k < j; ++k) {
        double dot = 0;
        for (int64_t i = 0; i < m.rows; ++i)
          dot += m(i, j) * m(i, k);
        for (int64_t i = 0; i < m.rows; ++i)
          m(i, j) -= dot * m(i, k);
      }
      double norm = 0;
      for (int64_t i = 0; i < m.rows; ++i)
        norm += m(i, j) * m(i, j);
      norm = std::sqrt(norm);
      for (int64_t i = 0; i < m.rows; ++i)
        m(i, j) = norm > 1e-300 ? m(i, j) / norm : 0.0;
    }
}

TruncatedSvd mlir::moe::truncatedSvd(const Matrix &a, int64_t rank,
                                     int64_t oversample,
                                     int64_t powerIterations, uint64_t seed) {
  int64_t width =
      std::min<int64_t>(rank + oversample, std::min(a.rows, a.cols));
  // Range finder: q spans the dominant column space of a.
  Matrix omega(a.cols, width);
  for (int64_t i = 0; i < int64_t(omega.data.size()); ++i)
    omega.data[i] = weights::normalAt(seed, i);
  Matrix q = multiply(a, omega);
  orthonormalizeColumns(q);
  for (int64_t it = 0; it < powerIterations; ++it) {
    Matrix z = multiplyTransposedLeft(a, q); // [cols, width]
    orthonormalizeColumns(z);
    q = multiply(a, z);
    orthonormalizeColumns(q);
  }
  // b = q^T a is small: its SVD comes from the eigenvectors of b b^T.
  Matrix b = multiplyTransposedLeft(q, a); // [width, cols]
  Matrix gram = multiplyTransposedRight(b, b);
  std::vector<double> values;
  Matrix vectors;
  symmetricEigen(gram, values, vectors);

  int64_t kept = std::min(rank, width);
  TruncatedSvd svd;
  svd.u = Matrix(a.rows, rank);
  svd.v = Matrix(a.cols, rank);
  svd.s.assign(rank, 0.0);
  Matrix qw = multiply(q, vectors); // [rows, width]
  for (int64_t j = 0; j < kept; ++j) {
    double sigma = std::sqrt(std::max(values[j], 0.0));
    svd.s[j] = sigma;
    for (int64_t i = 0; i < a.rows; ++i)
      svd.u(i, j) = qw(i, j);
    if (sigma == 0)
      continue;
    // v_j = b^T w_j / sigma_j.
    for (int64_t c = 0; c < a.cols; ++c) {
      double sum = 0;
      for (int64_t r = 0; r < width; ++r)
        sum += b(r, c) * vectors(r, j);
      svd.v(c, j) = sum / sigma;
    }
  }
  return svd;
}

double mlir::moe::rowConditionNumber(const Matrix &rows) {
  Matrix gram = multiplyTransposedRight(rows, rows);
  std::vector<double> values;
  Matrix vectors;
  symmetricEigen(gram, values, vectors);
  if (values.empty())
    return 1.0;
  double largest = values.front(), smallest = values.back();
  if (!(largest > 0))
    return std::numeric_limits<double>::infinity();
  if (smallest <= largest * 1e-24)
    return std::numeric_limits<double>::infinity();
  return std::sqrt(largest / smallest);
}
