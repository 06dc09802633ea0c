// A host implementation of stub/Particle.h and stub/dct.h: runs examples/testfw on a
// Linux pseudo-terminal so trayline's tests can talk to the real example firmware
// code with the real station client (tests/station_tests/test_tp_example_firmware.py).
//
// Build: g++ -std=c++17 -I stub src/testfw.cpp host/particle_host.cpp -o testfw-host
// Run:   ./testfw-host            -> prints the pty path (/dev/pts/N) on stdout, then serves
//
// The "hardware" is set by environment variables: TESTFW_DEVICE_ID, TESTFW_DEVICE_OS,
// TESTFW_VBAT, TESTFW_RSSI; the DCT is kept in memory and written to TESTFW_DCT (a file)
// on every dct_write_app_data, so a test can check the setup-done byte at offset 8134.
// This is test scaffolding, not Device OS: only what the example calls, simply done.

#include "Particle.h"
#include "dct.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

const char* env(const char* name, const char* fallback) {
    const char* value = getenv(name);
    return value && *value ? value : fallback;
}

char* duplicate(const char* text) {
    const size_t n = strlen(text);
    char* copy = static_cast<char*>(malloc(n + 1));
    memcpy(copy, text, n + 1);
    return copy;
}

// ---------------------------------------------------------------- JSON tree

struct Node {
    enum Type { NUL, BOOL, NUMBER, STRING, ARRAY, OBJECT } type = NUL;
    bool boolean = false;
    double number = 0;
    std::string text;  // string value, or the token of a number/literal
    std::vector<std::pair<std::string, const Node*>> members;
    std::vector<const Node*> items;
};

std::deque<Node> nodes;  // every parsed node lives as long as the process (a test harness)

struct Parser {
    const char* p;
    const char* end;

    void skip() {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
            ++p;
        }
    }

    bool literal(const char* word) {
        const size_t n = strlen(word);
        if (static_cast<size_t>(end - p) < n || strncmp(p, word, n) != 0) {
            return false;
        }
        p += n;
        return true;
    }

    bool string(std::string& out) {
        if (p >= end || *p != '"') {
            return false;
        }
        ++p;
        while (p < end && *p != '"') {
            char c = *p++;
            if (static_cast<unsigned char>(c) < 0x20) {
                return false;
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (p >= end) {
                return false;
            }
            c = *p++;
            switch (c) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    if (end - p < 4) {
                        return false;
                    }
                    const unsigned code = strtoul(std::string(p, 4).c_str(), nullptr, 16);
                    p += 4;
                    if (code < 0x80) {
                        out += static_cast<char>(code);
                    } else if (code < 0x800) {
                        out += static_cast<char>(0xC0 | (code >> 6));
                        out += static_cast<char>(0x80 | (code & 0x3F));
                    } else {
                        out += static_cast<char>(0xE0 | (code >> 12));
                        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
                        out += static_cast<char>(0x80 | (code & 0x3F));
                    }
                    break;
                }
                default: return false;
            }
        }
        if (p >= end) {
            return false;
        }
        ++p;
        return true;
    }

    const Node* value(int depth) {
        skip();
        if (p >= end || depth > 32) {
            return nullptr;
        }
        nodes.emplace_back();
        Node& node = nodes.back();
        if (*p == '{') {
            node.type = Node::OBJECT;
            ++p;
            skip();
            if (p < end && *p == '}') {
                ++p;
                return &node;
            }
            while (true) {
                skip();
                std::string key;
                if (!string(key)) {
                    return nullptr;
                }
                skip();
                if (p >= end || *p++ != ':') {
                    return nullptr;
                }
                const Node* member = value(depth + 1);
                if (!member) {
                    return nullptr;
                }
                node.members.emplace_back(key, member);
                skip();
                if (p < end && *p == ',') {
                    ++p;
                    continue;
                }
                if (p < end && *p == '}') {
                    ++p;
                    return &node;
                }
                return nullptr;
            }
        }
        if (*p == '[') {
            node.type = Node::ARRAY;
            ++p;
            skip();
            if (p < end && *p == ']') {
                ++p;
                return &node;
            }
            while (true) {
                const Node* item = value(depth + 1);
                if (!item) {
                    return nullptr;
                }
                node.items.push_back(item);
                skip();
                if (p < end && *p == ',') {
                    ++p;
                    continue;
                }
                if (p < end && *p == ']') {
                    ++p;
                    return &node;
                }
                return nullptr;
            }
        }
        if (*p == '"') {
            node.type = Node::STRING;
            return string(node.text) ? &node : nullptr;
        }
        if (literal("true") || literal("false")) {
            node.type = Node::BOOL;
            node.boolean = p[-1] == 'e' && p[-2] == 'u';
            node.text = node.boolean ? "true" : "false";
            return &node;
        }
        if (literal("null")) {
            return &node;
        }
        char* after = nullptr;
        const std::string rest(p, end);
        node.number = strtod(rest.c_str(), &after);
        if (after == rest.c_str()) {
            return nullptr;
        }
        node.type = Node::NUMBER;
        node.text.assign(p, after - rest.c_str());
        p += after - rest.c_str();
        return &node;
    }
};

const Node* asNode(const void* node) {
    return static_cast<const Node*>(node);
}

// ---------------------------------------------------------------- the pseudo-terminal

int master = -1;
std::string input;
std::string output;
bool resetRequested = false;

void pump() {
    char buffer[512];
    while (true) {
        const ssize_t n = ::read(master, buffer, sizeof buffer);
        if (n <= 0) {
            break;
        }
        input.append(buffer, static_cast<size_t>(n));
    }
}

void flushOutput() {
    size_t sent = 0;
    while (sent < output.size()) {
        const ssize_t n = ::write(master, output.data() + sent, output.size() - sent);
        if (n <= 0) {
            pollfd wait = {master, POLLOUT, 0};
            poll(&wait, 1, 50);
            continue;
        }
        sent += static_cast<size_t>(n);
    }
    output.clear();
}

uint8_t dct[8392];

}  // namespace

// ---------------------------------------------------------------- String

String::String() : buf_(duplicate("")) {}
String::String(const char* cstr) : buf_(duplicate(cstr ? cstr : "")) {}
String::String(const String& other) : buf_(duplicate(other.buf_)) {}
String& String::operator=(const String& other) {
    if (this != &other) {
        char* copy = duplicate(other.buf_);
        free(buf_);
        buf_ = copy;
    }
    return *this;
}
String& String::operator=(const char* cstr) {
    char* copy = duplicate(cstr ? cstr : "");
    free(buf_);
    buf_ = copy;
    return *this;
}
String::~String() { free(buf_); }
const char* String::c_str() const { return buf_; }
unsigned String::length() const { return static_cast<unsigned>(strlen(buf_)); }
bool String::operator==(const char* cstr) const { return strcmp(buf_, cstr ? cstr : "") == 0; }
String String::format(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char buffer[512];
    vsnprintf(buffer, sizeof buffer, fmt, args);
    va_end(args);
    return String(buffer);
}

// ---------------------------------------------------------------- Print and Serial

size_t Print::write(const char* str) { return write(reinterpret_cast<const uint8_t*>(str), strlen(str)); }
size_t Print::write(const uint8_t* buffer, size_t size) {
    for (size_t i = 0; i < size; i++) {
        write(buffer[i]);
    }
    return size;
}
size_t Print::print(const char* str) { return write(str); }
size_t Print::println(const char* str) { return write(str) + println(); }
size_t Print::println() { return write("\r\n"); }

void USBSerial::begin(long) {}
bool USBSerial::isConnected() { return true; }
int USBSerial::available() {
    pump();
    return static_cast<int>(input.size());
}
int USBSerial::read() {
    if (input.empty()) {
        pump();
    }
    if (input.empty()) {
        return -1;
    }
    const int c = static_cast<unsigned char>(input[0]);
    input.erase(0, 1);
    return c;
}
void USBSerial::flush() { flushOutput(); }
size_t USBSerial::write(uint8_t c) {
    output += static_cast<char>(c);
    if (c == '\n') {
        flushOutput();
    }
    return 1;
}
USBSerial Serial;

// ---------------------------------------------------------------- JSON

const char* JSONString::data() const { return data_; }
size_t JSONString::size() const { return size_; }
bool JSONString::isEmpty() const { return size_ == 0; }
JSONString::operator const char*() const { return data_; }
bool JSONString::operator==(const char* str) const {
    return strlen(str) == size_ && memcmp(str, data_, size_) == 0;
}

JSONValue::JSONValue() = default;
bool JSONValue::isValid() const { return node_ != nullptr; }
bool JSONValue::isNull() const { return node_ && asNode(node_)->type == Node::NUL; }
bool JSONValue::isBool() const { return node_ && asNode(node_)->type == Node::BOOL; }
bool JSONValue::isNumber() const { return node_ && asNode(node_)->type == Node::NUMBER; }
bool JSONValue::isString() const { return node_ && asNode(node_)->type == Node::STRING; }
bool JSONValue::isArray() const { return node_ && asNode(node_)->type == Node::ARRAY; }
bool JSONValue::isObject() const { return node_ && asNode(node_)->type == Node::OBJECT; }
bool JSONValue::toBool() const { return node_ && (asNode(node_)->boolean || toDouble() != 0); }
int JSONValue::toInt() const { return static_cast<int>(toDouble()); }
double JSONValue::toDouble() const {
    if (!node_) {
        return 0;
    }
    const Node* node = asNode(node_);
    return node->type == Node::NUMBER ? node->number : strtod(node->text.c_str(), nullptr);
}
JSONString JSONValue::toString() const {
    JSONString result;
    if (node_) {
        result.data_ = asNode(node_)->text.c_str();
        result.size_ = asNode(node_)->text.size();
    }
    return result;
}
JSONValue JSONValue::parseCopy(const char* json) { return parseCopy(json, strlen(json)); }
JSONValue JSONValue::parseCopy(const char* json, size_t size) {
    Parser parser{json, json + size};
    JSONValue result;
    const Node* node = parser.value(0);
    parser.skip();
    result.node_ = parser.p == parser.end ? node : nullptr;
    return result;
}

JSONObjectIterator::JSONObjectIterator(const JSONValue& value)
    : node_(value.isObject() ? value.node_ : nullptr) {}
bool JSONObjectIterator::next() {
    return node_ && ++index_ < static_cast<long>(asNode(node_)->members.size());
}
JSONString JSONObjectIterator::name() const {
    JSONString result;
    const std::string& key = asNode(node_)->members[index_].first;
    result.data_ = key.c_str();
    result.size_ = key.size();
    return result;
}
JSONValue JSONObjectIterator::value() const {
    JSONValue result;
    result.node_ = asNode(node_)->members[index_].second;
    return result;
}

JSONArrayIterator::JSONArrayIterator(const JSONValue& value)
    : node_(value.isArray() ? value.node_ : nullptr) {}
bool JSONArrayIterator::next() {
    return node_ && ++index_ < static_cast<long>(asNode(node_)->items.size());
}
JSONValue JSONArrayIterator::value() const {
    JSONValue result;
    result.node_ = asNode(node_)->items[index_];
    return result;
}

void JSONWriter::separate() {
    if (afterName_) {
        afterName_ = false;
        return;
    }
    if (!first_) {
        write(",", 1);
    }
    first_ = false;
}
void JSONWriter::writeString(const char* text) {
    std::string out = "\"";
    for (const char* c = text; *c; ++c) {
        const unsigned char u = static_cast<unsigned char>(*c);
        if (*c == '"' || *c == '\\') {
            out += '\\';
            out += *c;
        } else if (u < 0x20) {
            char escape[8];
            snprintf(escape, sizeof escape, "\\u%04x", u);
            out += escape;
        } else {
            out += *c;
        }
    }
    out += '"';
    write(out.data(), out.size());
}
JSONWriter& JSONWriter::beginArray() { separate(); write("[", 1); first_ = true; return *this; }
JSONWriter& JSONWriter::endArray() { write("]", 1); first_ = false; return *this; }
JSONWriter& JSONWriter::beginObject() { separate(); write("{", 1); first_ = true; return *this; }
JSONWriter& JSONWriter::endObject() { write("}", 1); first_ = false; return *this; }
JSONWriter& JSONWriter::name(const char* name) {
    separate();
    writeString(name);
    write(":", 1);
    afterName_ = true;
    return *this;
}
JSONWriter& JSONWriter::value(bool val) {
    separate();
    write(val ? "true" : "false", val ? 4 : 5);
    return *this;
}
JSONWriter& JSONWriter::value(int val) { return value(static_cast<long>(val)); }
JSONWriter& JSONWriter::value(unsigned val) { return value(static_cast<unsigned long>(val)); }
JSONWriter& JSONWriter::value(long val) {
    separate();
    const std::string text = std::to_string(val);
    write(text.data(), text.size());
    return *this;
}
JSONWriter& JSONWriter::value(unsigned long val) {
    separate();
    const std::string text = std::to_string(val);
    write(text.data(), text.size());
    return *this;
}
JSONWriter& JSONWriter::value(double val) { return value(val, 6); }
JSONWriter& JSONWriter::value(double val, int precision) {
    if (!std::isfinite(val)) {
        return nullValue();
    }
    separate();
    char text[64];
    snprintf(text, sizeof text, "%.*g", precision, val);
    write(text, strlen(text));
    return *this;
}
JSONWriter& JSONWriter::value(const char* val) {
    separate();
    writeString(val);
    return *this;
}
JSONWriter& JSONWriter::nullValue() {
    separate();
    write("null", 4);
    return *this;
}

JSONStreamWriter::JSONStreamWriter(Print& stream) : stream_(stream) {}
void JSONStreamWriter::write(const char* data, size_t size) {
    stream_.write(reinterpret_cast<const uint8_t*>(data), size);
}

// ---------------------------------------------------------------- time, pins, power, radio

system_tick_t millis() {
    using namespace std::chrono;
    static const auto start = steady_clock::now();
    return static_cast<system_tick_t>(duration_cast<milliseconds>(steady_clock::now() - start).count());
}
void delay(system_tick_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
int32_t analogRead(pin_t) { return static_cast<int32_t>(atof(env("TESTFW_VBAT", "3.91")) / 0.0011224); }

FuelGauge::FuelGauge() = default;
float FuelGauge::getVCell() { return static_cast<float>(atof(env("TESTFW_VBAT", "3.91"))); }
float FuelGauge::getSoC() { return 81.5f; }

namespace {
bool modemPower = false;
bool cloudConnected = false;
}  // namespace

float CellularSignal::getStrengthValue() const { return static_cast<float>(atof(env("TESTFW_RSSI", "-71"))); }
float CellularSignal::getQualityValue() const { return -9.0f; }
void CellularClass::on() { modemPower = true; }
void CellularClass::off() { modemPower = false; }
bool CellularClass::isOn() { return modemPower; }
bool CellularClass::ready() { return modemPower; }
CellularSignal CellularClass::RSSI() { return CellularSignal(); }
CellularClass Cellular;

void CloudClass::connect() { cloudConnected = modemPower; }
void CloudClass::disconnect() { cloudConnected = false; }
bool CloudClass::connected() { return cloudConnected; }
bool CloudClass::process() { return true; }
CloudClass Particle;

SystemSleepConfiguration::SystemSleepConfiguration() = default;
SystemSleepConfiguration& SystemSleepConfiguration::mode(SystemSleepMode) { return *this; }
SystemSleepConfiguration& SystemSleepConfiguration::duration(system_tick_t) { return *this; }
int SystemSleepResult::error() const { return 0; }

String SystemClass::deviceID() { return String(env("TESTFW_DEVICE_ID", "e00fce68a1b2c3d4e5f60718")); }
String SystemClass::version() { return String(env("TESTFW_DEVICE_OS", "4.2.0")); }
uint32_t SystemClass::freeMemory() { return 81234; }
void SystemClass::reset() { resetRequested = true; }
SystemSleepResult SystemClass::sleep(const SystemSleepConfiguration&) { return SystemSleepResult(); }
SystemClass System;

// ---------------------------------------------------------------- DCT

extern "C" int dct_read_app_data_copy(uint32_t offset, void* ptr, size_t size) {
    if (offset + size > sizeof dct) {
        return -1;
    }
    memcpy(ptr, dct + offset, size);
    return 0;
}

extern "C" int dct_write_app_data(const void* data, uint32_t offset, uint32_t size) {
    if (offset + size > sizeof dct) {
        return -1;
    }
    memcpy(dct + offset, data, size);
    const char* path = getenv("TESTFW_DCT");
    if (path) {
        FILE* file = fopen(path, "wb");
        if (!file) {
            return -1;
        }
        fwrite(dct, 1, sizeof dct, file);
        fclose(file);
    }
    return 0;
}

// ---------------------------------------------------------------- main: a device on a pty

int main() {
    memset(dct, 0xFF, sizeof dct);
    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        perror("posix_openpt");
        return 1;
    }
    const char* path = ptsname(master);
    // Keep the slave open ourselves so the port stays up between clients (as a unit's does).
    const int keep = open(path, O_RDWR | O_NOCTTY);
    termios mode;
    tcgetattr(keep, &mode);
    cfmakeraw(&mode);
    tcsetattr(keep, TCSANOW, &mode);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    printf("%s\n", path);
    fflush(stdout);
    setup();
    while (true) {
        loop();
        if (resetRequested) {  // System.reset(): start the application again
            resetRequested = false;
            input.clear();
            setup();
        }
        pollfd wait = {master, POLLIN, 0};
        poll(&wait, 1, 5);
    }
}
