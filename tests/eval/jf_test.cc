// Per-frame J and F and the per-sequence statistics, on hand-made masks.
#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "litseg/core/error.h"
#include "litseg/eval/jf.h"

namespace litseg {
namespace {

// Inclusive rectangle [x0, x1] x [y0, y1] in a w x h mask.
Mask Rect(int w, int h, int x0, int y0, int x1, int y1) {
  Mask m(w, h);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) m(x, y) = 1;
  return m;
}

Mask Pixel(int w, int h, int x, int y) { return Rect(w, h, x, y, x, y); }

Mask FromRows(const std::vector<std::string>& rows) {
  Mask m(static_cast<int>(rows[0].size()), static_cast<int>(rows.size()));
  for (int y = 0; y < m.height(); ++y)
    for (int x = 0; x < m.width(); ++x) m(x, y) = rows[y][x] == '1';
  return m;
}

std::vector<std::string> ToRows(const Mask& m) {
  std::vector<std::string> rows(m.height(), std::string(m.width(), '0'));
  for (int y = 0; y < m.height(); ++y)
    for (int x = 0; x < m.width(); ++x) rows[y][x] = m(x, y) ? '1' : '0';
  return rows;
}

TEST(RegionJ, DefinitionVoidAndEmpty) {
  const Mask a = Rect(20, 10, 0, 0, 9, 9), b = Rect(20, 10, 5, 0, 14, 9);
  EXPECT_DOUBLE_EQ(RegionJ(a, b), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(RegionJ(b, a), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(RegionJ(a, a), 1.0);
  // Both empty: J = 1 (the official special case), one empty: 0.
  EXPECT_DOUBLE_EQ(RegionJ(Mask(20, 10), Mask(20, 10)), 1.0);
  EXPECT_DOUBLE_EQ(RegionJ(Mask(20, 10), a), 0.0);
  EXPECT_DOUBLE_EQ(RegionJ(a, Mask(20, 10)), 0.0);
  // Void hides b's right half: union 100, intersection 50.
  const Mask void_pixels = Rect(20, 10, 10, 0, 19, 9);
  EXPECT_DOUBLE_EQ(RegionJ(a, b, &void_pixels), 50.0 / 100.0);
  // Everything void: nothing left to compare, union empty -> 1.
  const Mask all_void(20, 10, 1);
  EXPECT_DOUBLE_EQ(RegionJ(a, Mask(20, 10), &all_void), 1.0);
  // Any non-zero value is foreground.
  Mask a255 = a;
  for (auto& v : a255.pixels()) v *= 255;
  EXPECT_DOUBLE_EQ(RegionJ(a255, b), 50.0 / 150.0);
}

TEST(RegionJ, SizeMismatchIsAnError) {
  EXPECT_THROW(RegionJ(Mask(20, 10), Mask(10, 20)), Error);
  const Mask wrong_void(5, 5);
  EXPECT_THROW(RegionJ(Mask(20, 10), Mask(20, 10), &wrong_void), Error);
  EXPECT_THROW(BoundaryF(Mask(20, 10), Mask(20, 11)), Error);
  EXPECT_THROW(BoundaryF(Mask(20, 10), Mask(20, 10), &wrong_void), Error);
}

TEST(BoundaryMap, BlocksTouchingTheImageEdgesHaveNoBoundaryAlongTheEdge) {
  // A 2x2 block in the bottom-right corner: the image edge is not a boundary; the pixels
  // just above/left of the block are (the map is offset half a pixel towards the origin).
  EXPECT_EQ(ToRows(BoundaryMap(FromRows({"0000", "0000", "0011", "0011"}))),
            (std::vector<std::string>{"0000", "0111", "0100", "0100"}));
  // The same block in the top-left corner: its own right and bottom pixels are.
  EXPECT_EQ(ToRows(BoundaryMap(FromRows({"1100", "1100", "0000", "0000"}))),
            (std::vector<std::string>{"0100", "1100", "0000", "0000"}));
  // A strip along the left edge, full height: only its inner column.
  const Mask strip = Rect(12, 6, 0, 0, 3, 5);
  EXPECT_EQ(BoundaryMap(strip), Rect(12, 6, 3, 0, 3, 5));
  // Full and empty masks have no boundary at all.
  EXPECT_EQ(BoundaryMap(Mask(7, 5, 1)), Mask(7, 5));
  EXPECT_EQ(BoundaryMap(Mask(7, 5)), Mask(7, 5));
  // Single pixel inside: itself and its west, north and north-west neighbours.
  EXPECT_EQ(BoundaryMap(Pixel(6, 6, 3, 3)), Rect(6, 6, 2, 2, 3, 3));
  // Degenerate shapes.
  EXPECT_EQ(BoundaryMap(Mask(1, 1, 1)), Mask(1, 1));
  EXPECT_EQ(ToRows(BoundaryMap(FromRows({"0110"}))), (std::vector<std::string>{"1010"}));
  EXPECT_EQ(ToRows(BoundaryMap(FromRows({"0", "1", "1", "0"}))), (std::vector<std::string>{"1", "0", "1", "0"}));
}

// _seg2bmap written as the official array expression: e, s, se are the mask shifted by one
// pixel (zero-filled), b = seg^e | seg^s | seg^se, then the last row := seg^e, the last
// column := seg^s, and the corner := 0, in that order.
Mask ShiftedArrayBoundary(const Mask& seg) {
  const int w = seg.width(), h = seg.height();
  Mask e(w, h), s(w, h), se(w, h), b(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x + 1 < w; ++x) e(x, y) = seg(x + 1, y) != 0;
  for (int y = 0; y + 1 < h; ++y)
    for (int x = 0; x < w; ++x) s(x, y) = seg(x, y + 1) != 0;
  for (int y = 0; y + 1 < h; ++y)
    for (int x = 0; x + 1 < w; ++x) se(x, y) = seg(x + 1, y + 1) != 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int v = seg(x, y) != 0;
      b(x, y) = (v ^ e(x, y)) | (v ^ s(x, y)) | (v ^ se(x, y));
    }
  for (int x = 0; x < w; ++x) b(x, h - 1) = (seg(x, h - 1) != 0) ^ e(x, h - 1);
  for (int y = 0; y < h; ++y) b(w - 1, y) = (seg(w - 1, y) != 0) ^ s(w - 1, y);
  b(w - 1, h - 1) = 0;
  return b;
}

TEST(BoundaryMap, MatchesTheShiftedArrayDefinitionOnRandomMasks) {
  std::mt19937 rng(7);
  const std::vector<std::pair<int, int>> sizes = {{1, 1}, {1, 9}, {9, 1}, {2, 2}, {5, 3}, {31, 17}, {64, 48}};
  for (const auto& [w, h] : sizes) {
    for (int trial = 0; trial < 20; ++trial) {
      Mask m(w, h);
      std::bernoulli_distribution on(0.1 + 0.04 * trial);
      for (auto& v : m.pixels()) v = on(rng);
      ASSERT_EQ(BoundaryMap(m), ShiftedArrayBoundary(m)) << w << "x" << h << " trial " << trial;
    }
  }
}

TEST(BoundaryRadius, CeilOfTheDiagonalFraction) {
  // 100x75 has diagonal exactly 125, and 0.008 * 125 evaluates to exactly 1.0: radius 1.
  EXPECT_EQ(BoundaryRadius(100, 75, 0.008), 1.0);
  EXPECT_EQ(BoundaryRadius(101, 75, 0.008), 2.0);    // 0.008 * 125.8 -> 2
  EXPECT_EQ(BoundaryRadius(854, 480, 0.008), 8.0);   // DAVIS 480p: 7.84 -> 8
  EXPECT_EQ(BoundaryRadius(1920, 1080, 0.008), 18.0);
  EXPECT_EQ(BoundaryRadius(800, 600, 0.008), 8.0);   // exactly 8.0
  EXPECT_EQ(BoundaryRadius(854, 480, 0.0), 0.0);
  // >= 1: a radius in pixels, as given.
  EXPECT_EQ(BoundaryRadius(854, 480, 3.0), 3.0);
  EXPECT_EQ(BoundaryRadius(854, 480, 1.5), 1.5);
  EXPECT_THROW(BoundaryRadius(10, 10, -0.1), Error);
  EXPECT_THROW(BoundaryRadius(10, 10, std::numeric_limits<double>::quiet_NaN()), Error);
}

TEST(BoundaryF, EmptyMaskSpecialCases) {
  const Mask a = Rect(100, 80, 10, 10, 60, 50);
  EXPECT_DOUBLE_EQ(BoundaryF(a, a), 1.0);
  // Both boundaries empty: precision = recall = 1.
  EXPECT_DOUBLE_EQ(BoundaryF(Mask(100, 80), Mask(100, 80)), 1.0);
  EXPECT_DOUBLE_EQ(BoundaryF(Mask(100, 80, 1), Mask(100, 80, 1)), 1.0);
  // Full image vs empty: neither has a boundary (the image edge is none) -> 1, although J = 0.
  EXPECT_DOUBLE_EQ(BoundaryF(Mask(100, 80, 1), Mask(100, 80)), 1.0);
  EXPECT_DOUBLE_EQ(RegionJ(Mask(100, 80, 1), Mask(100, 80)), 0.0);
  // Exactly one boundary empty: F = 0 either way.
  EXPECT_DOUBLE_EQ(BoundaryF(Mask(100, 80), a), 0.0);
  EXPECT_DOUBLE_EQ(BoundaryF(a, Mask(100, 80)), 0.0);
  // Far apart: nothing matches.
  EXPECT_DOUBLE_EQ(BoundaryF(a, Rect(100, 80, 75, 60, 90, 75)), 0.0);
}

TEST(BoundaryF, ToleranceIsASkimageDisk) {
  // Single pixels: each boundary is a 2x2 block. With a radius of 3 pixels (bound_th >= 1
  // is a pixel count) the nearest pixels of the two blocks are (dx-1, dy-1) apart.
  const int w = 40, h = 40;
  const Mask p = Pixel(w, h, 10, 10);
  // (3, 0): on the disk's rim -> the facing column of each block matches: P = R = 1/2.
  EXPECT_DOUBLE_EQ(BoundaryF(p, Pixel(w, h, 14, 10), nullptr, 3.0), 0.5);
  // (4, 0): out of reach.
  EXPECT_DOUBLE_EQ(BoundaryF(p, Pixel(w, h, 15, 10), nullptr, 3.0), 0.0);
  // (2, 2): 8 <= 9, inside the disk (a diamond |x|+|y| <= 3 would miss it): one corner
  // each, P = R = 1/4.
  EXPECT_DOUBLE_EQ(BoundaryF(p, Pixel(w, h, 13, 13), nullptr, 3.0), 0.25);
  // (3, 1): 10 > 9, outside the disk (a square kernel would reach it).
  EXPECT_DOUBLE_EQ(BoundaryF(p, Pixel(w, h, 14, 12), nullptr, 3.0), 0.0);
  // Radius 0: only coincident boundary pixels match.
  EXPECT_DOUBLE_EQ(BoundaryF(p, Pixel(w, h, 11, 10), nullptr, 0.0), 0.5);
}

TEST(BoundaryF, FractionalPixelRadiusUsesSkimagesHalfIntegerGrid) {
  // disk(1.5) is a 4x4 grid at offsets -1.5..1.5 whose centre 2x2 cells are set; dilation
  // anchors it at cell (2, 2), so a boundary pixel at x covers x and x + 1 only.
  const int w = 40, h = 40;
  const Mask p = Pixel(w, h, 10, 10);  // boundary block x, y in {9, 10}
  const Mask q = Pixel(w, h, 11, 10);  // boundary block x in {10, 11}
  // Dilated q covers x in {10..12}: half of p's block -> precision 1/2. Dilated p covers
  // x in {9..11}: all of q's block -> recall 1. F = 2/3 (a symmetric disk gives 1).
  EXPECT_DOUBLE_EQ(BoundaryF(p, q, nullptr, 1.5), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(BoundaryF(q, p, nullptr, 1.5), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(BoundaryF(p, q, nullptr, 1.0), 1.0);
  // Two pixels apart: p's block is never covered by dilated r -> F = 0; radius 1 reaches
  // the facing columns -> 1/2.
  const Mask r = Pixel(w, h, 12, 10);
  EXPECT_DOUBLE_EQ(BoundaryF(p, r, nullptr, 1.5), 0.0);
  EXPECT_DOUBLE_EQ(BoundaryF(p, r, nullptr, 1.0), 0.5);
}

TEST(BoundaryF, RadiusFollowsTheImageDiagonal) {
  // Pixels 3 apart: boundary blocks 2 apart. Radius 1 on 100x75, radius 2 on 101x75.
  EXPECT_DOUBLE_EQ(BoundaryF(Pixel(100, 75, 20, 20), Pixel(100, 75, 23, 20)), 0.0);
  EXPECT_DOUBLE_EQ(BoundaryF(Pixel(101, 75, 20, 20), Pixel(101, 75, 23, 20)), 0.5);
  // Default tolerance on 480p (8 px): a rectangle shifted by 8 px still matches fully.
  const Mask a = Rect(854, 480, 100, 100, 400, 300);
  EXPECT_DOUBLE_EQ(BoundaryF(a, Rect(854, 480, 108, 100, 408, 300)), 1.0);
  EXPECT_LT(BoundaryF(a, Rect(854, 480, 109, 100, 409, 300)), 1.0);
}

TEST(BoundaryF, VoidPixelsAreIgnored) {
  // Prediction and truth differ only on the right part, which is void: a perfect score.
  const int w = 100, h = 80;
  const Mask truth = Rect(w, h, 10, 10, 60, 50);
  const Mask prediction = Rect(w, h, 10, 10, 90, 50);
  EXPECT_LT(BoundaryF(prediction, truth), 1.0);
  EXPECT_LT(RegionJ(prediction, truth), 1.0);
  // The void region also covers the truth's right edge, so neither mask keeps a boundary
  // there (masks are cut at the void before their boundaries are taken).
  const Mask void_pixels = Rect(w, h, 55, 0, 99, 79);
  EXPECT_DOUBLE_EQ(BoundaryF(prediction, truth, &void_pixels), 1.0);
  EXPECT_DOUBLE_EQ(RegionJ(prediction, truth, &void_pixels), 1.0);
  const JfFrame both = EvaluateFrame(prediction, truth, &void_pixels);
  EXPECT_DOUBLE_EQ(both.j, 1.0);
  EXPECT_DOUBLE_EQ(both.f, 1.0);
  // A prediction lying wholly in void is as good as an empty one.
  const Mask in_void = Rect(w, h, 70, 20, 80, 30);
  EXPECT_DOUBLE_EQ(BoundaryF(in_void, Mask(w, h), &void_pixels), 1.0);
  EXPECT_DOUBLE_EQ(RegionJ(in_void, Mask(w, h), &void_pixels), 1.0);
}

TEST(BoundaryF, ObjectsOnTheImageEdge) {
  // Truth: left strip x <= 9; its only boundary is the column x = 9.
  const int w = 100, h = 75;  // radius 1
  const Mask truth = Rect(w, h, 0, 0, 9, h - 1);
  EXPECT_DOUBLE_EQ(BoundaryF(Rect(w, h, 0, 0, 10, h - 1), truth), 1.0);  // 1 px off: within radius
  EXPECT_DOUBLE_EQ(BoundaryF(Rect(w, h, 0, 0, 11, h - 1), truth), 0.0);  // 2 px off: out
  // Truth covering the whole image has no boundary; a prediction missing one border column
  // has one (the column next to the gap): precision 0, recall 1 -> F = 0.
  EXPECT_DOUBLE_EQ(BoundaryF(Rect(w, h, 1, 0, w - 1, h - 1), Mask(w, h, 1)), 0.0);
  // Missing the last column instead: the boundary lies on column w - 2.
  EXPECT_DOUBLE_EQ(BoundaryF(Rect(w, h, 0, 0, w - 2, h - 1), Mask(w, h, 1)), 0.0);
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(Statistics, MeanRecallDecay) {
  const JfStatistics s = ComputeStatistics({1.0, 1.0, 0.4, 0.0});
  EXPECT_DOUBLE_EQ(s.mean, 0.6);
  EXPECT_DOUBLE_EQ(s.recall, 0.5);
  // Bins for 4 frames: edges [0, 1, 2, 2, 3]; first bin frames 0..1, last 2..3.
  EXPECT_EQ(DecayBinEdges(4), (std::vector<long long>{0, 1, 2, 2, 3}));
  EXPECT_NEAR(s.decay, 1.0 - 0.2, 1e-15);
  // Recall counts values strictly above 0.5.
  EXPECT_DOUBLE_EQ(ComputeStatistics({0.5, 0.5000001}).recall, 0.5);
}

TEST(Statistics, ShortListsAndNaN) {
  const JfStatistics empty = ComputeStatistics({});
  EXPECT_TRUE(std::isnan(empty.mean));
  EXPECT_TRUE(std::isnan(empty.recall));
  EXPECT_TRUE(std::isnan(empty.decay));
  const JfStatistics one = ComputeStatistics({0.7});
  EXPECT_DOUBLE_EQ(one.mean, 0.7);
  EXPECT_DOUBLE_EQ(one.decay, 0.0);
  // Two frames: edges [0, 0, 1, 1, 1] -> first bin {v0}, last {v1}.
  EXPECT_EQ(DecayBinEdges(2), (std::vector<long long>{0, 0, 1, 1, 1}));
  EXPECT_DOUBLE_EQ(ComputeStatistics({0.9, 0.2}).decay, 0.7);
  // NaN frames: left out of means, counted as misses in recall (nanmean of a bool array).
  const JfStatistics with_nan = ComputeStatistics({1.0, kNaN, 0.0, 1.0});
  EXPECT_DOUBLE_EQ(with_nan.mean, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(with_nan.recall, 0.5);
}

std::vector<double> Ramp(size_t n) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i);
  return v;
}

TEST(Statistics, DecayBinsAsTheOfficialCodeUpTo256Frames) {
  // round(linspace(1, n, 5) + 1e-10) - 1 (round half to even, the 1e-10 breaking ties up).
  EXPECT_EQ(DecayBinEdges(48), (std::vector<long long>{0, 12, 24, 35, 47}));
  EXPECT_EQ(DecayBinEdges(5), (std::vector<long long>{0, 1, 2, 3, 4}));
  EXPECT_EQ(DecayBinEdges(7), (std::vector<long long>{0, 2, 3, 5, 6}));  // 2.5 -> 3, 4.0, 5.5 -> 6
  EXPECT_EQ(DecayBinEdges(256), (std::vector<long long>{0, 64, 128, 191, 255}));
  // Ramp over 256 frames: bins 0..64 (mean 32) and 191..255 (mean 223).
  EXPECT_DOUBLE_EQ(ComputeStatistics(Ramp(256)).decay, 32.0 - 223.0);
}

TEST(Statistics, DecayBeyond256FramesDoesNotWrap) {
  // The official uint8 cast turns the last edge 256 into 0 for 257 frames (empty last
  // bin, NaN decay); wider edges wrap anywhere for longer sequences. Here they do not.
  EXPECT_EQ(DecayBinEdges(257), (std::vector<long long>{0, 64, 128, 192, 256}));
  EXPECT_DOUBLE_EQ(ComputeStatistics(Ramp(257)).decay, 32.0 - 224.0);
  EXPECT_EQ(DecayBinEdges(300), (std::vector<long long>{0, 75, 150, 224, 299}));
  EXPECT_DOUBLE_EQ(ComputeStatistics(Ramp(300)).decay, 37.5 - 261.5);
  EXPECT_EQ(DecayBinEdges(1000), (std::vector<long long>{0, 250, 500, 749, 999}));
  EXPECT_DOUBLE_EQ(ComputeStatistics(Ramp(1000)).decay, 125.0 - 874.0);
  EXPECT_EQ(DecayBinEdges(100001), (std::vector<long long>{0, 25000, 50000, 75000, 100000}));
  // A score that falls from 1 to 0 over 1000 frames: the first quarter averages ~0.875.
  std::vector<double> falling(1000);
  for (size_t i = 0; i < falling.size(); ++i) falling[i] = 1.0 - static_cast<double>(i) / 999.0;
  const JfStatistics s = ComputeStatistics(falling);
  EXPECT_NEAR(s.decay, 0.75, 1e-3);
  EXPECT_NEAR(s.mean, 0.5, 1e-12);
}

}  // namespace
}  // namespace litseg
