#include "preprocess.h"

#include <algorithm>

#include <opencv2/imgproc.hpp>

namespace centerdet {

cv::Mat LetterboxTransform(int img_w, int img_h, int out_w, int out_h) {
  // The three point pairs of centerdet.geometry.get_affine_transform with rot 0 and no shift,
  // in float32 like numpy: the centre, a point half the scale above it, and a point at right
  // angles. Every value here is a multiple of 0.5, so float32 holds them exactly.
  const float cx = static_cast<float>(img_w) / 2.0f, cy = static_cast<float>(img_h) / 2.0f;
  const float s = static_cast<float>(std::max(img_w, img_h));
  cv::Point2f src[3], dst[3];
  src[0] = {cx, cy};
  src[1] = {cx + 0.0f, cy + s * -0.5f};
  dst[0] = {static_cast<float>(out_w) * 0.5f, static_cast<float>(out_h) * 0.5f};
  dst[1] = {dst[0].x + 0.0f, dst[0].y + static_cast<float>(out_w) * -0.5f};
  for (cv::Point2f *p : {src, dst}) {
    const cv::Point2f d = p[0] - p[1];
    p[2] = {p[1].x - d.y, p[1].y + d.x};
  }
  return cv::getAffineTransform(src, dst);
}

std::vector<float> PreprocessImage(const cv::Mat &bgr, int height, int width, const std::array<float, 3> &mean,
                                   const std::array<float, 3> &std) {
  cv::Mat canvas;
  cv::warpAffine(bgr, canvas, LetterboxTransform(bgr.cols, bgr.rows, width, height), cv::Size(width, height),
                 cv::INTER_LINEAR);
  std::vector<float> chw(static_cast<size_t>(3) * height * width);
  const size_t plane = static_cast<size_t>(height) * width;
  for (int y = 0; y < height; ++y) {
    const cv::Vec3b *row = canvas.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        // numpy: (uint8 -> float32) / 255, then (v - mean) / std, each rounded to float32.
        const float v = static_cast<float>(row[x][c]) / 255.0f;
        chw[c * plane + static_cast<size_t>(y) * width + x] = (v - mean[c]) / std[c];
      }
    }
  }
  return chw;
}

}  // namespace centerdet
