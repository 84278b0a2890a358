// The test-time input of eval.py with keep_res false, in C++: letterbox the image into (width,
// height) with an affine warp (bilinear, zero border), scale to [0, 1], normalise per channel,
// CHW float32. Must equal centerdet.inference.make_test_canvas + data.transforms.normalize.
#pragma once

#include <array>
#include <vector>

#include <opencv2/core.hpp>

namespace centerdet {

// 2x3 matrix mapping the image (centred, longer side fitted) onto the (out_w, out_h) canvas.
cv::Mat LetterboxTransform(int img_w, int img_h, int out_w, int out_h);

// (height, width): the network input, a multiple of 32 (preprocess.txt holds it).
std::vector<float> PreprocessImage(const cv::Mat &bgr, int height, int width, const std::array<float, 3> &mean,
                                   const std::array<float, 3> &std);

}  // namespace centerdet
