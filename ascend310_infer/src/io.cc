#include "io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace centerdet {

namespace {
std::runtime_error Error(const std::string &what, const std::string &path) {
  return std::runtime_error(what + ": " + path + (errno ? std::string(" (") + std::strerror(errno) + ")" : ""));
}
}  // namespace

std::vector<ImageEntry> ReadImageList(const std::string &path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read image list", path);
  std::vector<ImageEntry> entries;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos) throw std::runtime_error("malformed line in " + path + ": " + line);
    entries.push_back({line.substr(0, space), line.substr(space + 1)});
  }
  return entries;
}

std::map<std::string, std::vector<std::string>> ReadSettings(const std::string &path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read settings", path);
  std::map<std::string, std::vector<std::string>> settings;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key)) continue;
    while (words >> value) settings[key].push_back(value);
  }
  return settings;
}

std::vector<char> ReadFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("cannot read", path);
  std::vector<char> data(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  if (!in.read(data.data(), static_cast<std::streamsize>(data.size()))) throw Error("cannot read", path);
  return data;
}

void WriteFile(const std::string &path, const void *data, size_t size) {
  const std::string tmp = path + ".tmp";
  FILE *f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw Error("cannot write", tmp);
  const bool ok = std::fwrite(data, 1, size, f) == size && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    throw Error("cannot write", path);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error("cannot rename onto", path);
}

void MakeDirs(const std::string &path) {
  std::string prefix;
  std::istringstream parts(path);
  std::string part;
  if (!path.empty() && path[0] == '/') prefix = "/";
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    prefix += part + "/";
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) throw Error("cannot create folder", prefix);
    errno = 0;
  }
}

}  // namespace centerdet
