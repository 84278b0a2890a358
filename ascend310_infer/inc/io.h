// File contract shared with preprocess.py / postprocess.py (see src/centerdet/deploy/files.py):
// inputs  <dir>/images/<name>.bin  float32 (1, 3, H, W);  outputs  <dir>/<name>_<k>.bin  float32.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace centerdet {

// One line of images.txt: "<name> <image path>".
struct ImageEntry {
  std::string name;
  std::string path;
};

std::vector<ImageEntry> ReadImageList(const std::string &path);
// preprocess.txt: "key value..." lines (height, width, mean, std).
std::map<std::string, std::vector<std::string>> ReadSettings(const std::string &path);
std::vector<char> ReadFile(const std::string &path);
// Writes to a temp file next to `path`, then renames: a killed run leaves no truncated file.
void WriteFile(const std::string &path, const void *data, size_t size);
void MakeDirs(const std::string &path);

}  // namespace centerdet
