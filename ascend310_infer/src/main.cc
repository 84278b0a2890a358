// main MINDIR_PATH INPUT_DIR OUTPUT_DIR DEVICE_ID
// Runs every INPUT_DIR/images/<name>.bin listed in INPUT_DIR/images.txt through the MINDIR on an
// Ascend 310 and writes OUTPUT_DIR/<name>_<k>.bin per output k, the files postprocess.py reads.
// Built only with MindSpore's C++ inference package (see CMakeLists.txt); not compiled where that
// package is absent.
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/serialization.h"
#include "include/api/types.h"
#include "io.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MINDIR_PATH INPUT_DIR OUTPUT_DIR DEVICE_ID\n", argv[0]);
    return 1;
  }
  try {
    const std::string mindir = argv[1], in_dir = argv[2], out_dir = argv[3];
    auto context = std::make_shared<mindspore::Context>();
    auto ascend310 = std::make_shared<mindspore::Ascend310DeviceInfo>();
    ascend310->SetDeviceID(static_cast<uint32_t>(std::stoi(argv[4])));
    context->MutableDeviceInfo().push_back(ascend310);

    mindspore::Graph graph;
    if (mindspore::Serialization::Load(mindir, mindspore::ModelType::kMindIR, &graph) != mindspore::kSuccess) {
      throw std::runtime_error("cannot load MINDIR " + mindir);
    }
    mindspore::Model model;
    if (model.Build(mindspore::GraphCell(graph), context) != mindspore::kSuccess) {
      throw std::runtime_error("cannot build " + mindir + " for the Ascend 310");
    }
    const std::vector<mindspore::MSTensor> model_inputs = model.GetInputs();
    centerdet::MakeDirs(out_dir);
    double total_ms = 0;
    int count = 0;
    for (const auto &entry : centerdet::ReadImageList(in_dir + "/images.txt")) {
      std::vector<char> data = centerdet::ReadFile(in_dir + "/images/" + entry.name + ".bin");
      if (data.size() != model_inputs[0].DataSize()) {
        throw std::runtime_error(entry.name + ".bin holds " + std::to_string(data.size()) + " bytes, the model takes " +
                                 std::to_string(model_inputs[0].DataSize()));
      }
      std::vector<mindspore::MSTensor> inputs;
      inputs.emplace_back(model_inputs[0].Name(), model_inputs[0].DataType(), model_inputs[0].Shape(), data.data(),
                          data.size());
      std::vector<mindspore::MSTensor> outputs;
      const auto start = std::chrono::steady_clock::now();
      if (model.Predict(inputs, &outputs) != mindspore::kSuccess) {
        throw std::runtime_error("inference failed on " + entry.name);
      }
      total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      for (size_t k = 0; k < outputs.size(); ++k) {
        centerdet::WriteFile(out_dir + "/" + entry.name + "_" + std::to_string(k) + ".bin", outputs[k].Data().get(),
                             outputs[k].DataSize());
      }
      ++count;
    }
    std::printf("main: %d images, %.2f ms/img (network)\n", count, count ? total_ms / count : 0.0);
  } catch (const std::exception &exc) {
    std::fprintf(stderr, "error: %s\n", exc.what());
    return 2;
  }
  return 0;
}
