// preprocess_tool PREPROCESS_DIR OUTPUT_DIR
// Reads PREPROCESS_DIR/images.txt and preprocess.txt (written by preprocess.py) and writes
// OUTPUT_DIR/images/<name>.bin: the same network inputs preprocess.py writes, computed in C++.
#include <array>
#include <cstdio>
#include <exception>
#include <string>

#include <opencv2/imgcodecs.hpp>

#include "io.h"
#include "preprocess.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PREPROCESS_DIR OUTPUT_DIR\n", argv[0]);
    return 1;
  }
  try {
    const std::string in_dir = argv[1], out_dir = argv[2];
    auto settings = centerdet::ReadSettings(in_dir + "/preprocess.txt");
    for (const char *key : {"height", "width", "mean", "std"}) {
      if (settings[key].empty()) throw std::runtime_error(in_dir + "/preprocess.txt has no " + key);
    }
    const int height = std::stoi(settings["height"][0]), width = std::stoi(settings["width"][0]);
    std::array<float, 3> mean{}, std{};
    for (int c = 0; c < 3; ++c) {
      mean[c] = std::stof(settings["mean"].at(c));
      std[c] = std::stof(settings["std"].at(c));
    }
    centerdet::MakeDirs(out_dir + "/images");
    int written = 0;
    for (const auto &entry : centerdet::ReadImageList(in_dir + "/images.txt")) {
      const cv::Mat bgr = cv::imread(entry.path, cv::IMREAD_COLOR);
      if (bgr.empty()) {
        std::fprintf(stderr, "skip: cannot decode image %s\n", entry.path.c_str());
        continue;
      }
      const auto chw = centerdet::PreprocessImage(bgr, height, width, mean, std);
      centerdet::WriteFile(out_dir + "/images/" + entry.name + ".bin", chw.data(), chw.size() * sizeof(float));
      ++written;
    }
    std::printf("preprocess_tool: %d inputs of [1, 3, %d, %d] in %s/images\n", written, height, width,
                out_dir.c_str());
  } catch (const std::exception &exc) {
    std::fprintf(stderr, "error: %s\n", exc.what());
    return 2;
  }
  return 0;
}
