// A stub of the Particle Device OS API: only the declarations examples/testfw uses,
// enough for `g++ -std=c++17 -fsyntax-only -I stub src/testfw.cpp` to check the
// example without the Device OS toolchain. Signatures follow the Device OS reference
// (docs.particle.io, "Firmware API"). The private members are for ../host/, a small
// host implementation that runs the example on a pseudo-terminal for trayline's tests;
// they are not Device OS's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

typedef uint32_t system_tick_t;
typedef uint16_t pin_t;

// -- system modes and threading --------------------------------------------------
enum System_Mode_TypeDef { DEFAULT = 0, AUTOMATIC = 1, SEMI_AUTOMATIC = 2, MANUAL = 3, SAFE_MODE = 4 };
#define SYSTEM_MODE(mode) [[maybe_unused]] static const System_Mode_TypeDef particle_stub_mode_ = mode
#define SYSTEM_THREAD_ENABLED 1
#define SYSTEM_THREAD_DISABLED 0
#define SYSTEM_THREAD(state) [[maybe_unused]] static const int particle_stub_thread_ = SYSTEM_THREAD_##state

// -- time and pins -----------------------------------------------------------------
system_tick_t millis();
void delay(system_tick_t ms);
int32_t analogRead(pin_t pin);
const pin_t BATT = 20;

// -- String ----------------------------------------------------------------------
class String {
public:
    String();
    String(const char* cstr);
    String(const String& other);
    String& operator=(const String& other);
    String& operator=(const char* cstr);
    ~String();
    const char* c_str() const;
    unsigned length() const;
    bool operator==(const char* cstr) const;
    static String format(const char* fmt, ...);

private:
    char* buf_ = nullptr;
};

// -- Print / Stream / USB serial ---------------------------------------------------
class Print {
public:
    virtual ~Print() = default;
    virtual size_t write(uint8_t c) = 0;
    size_t write(const char* str);
    size_t write(const uint8_t* buffer, size_t size);
    size_t print(const char* str);
    size_t println(const char* str);
    size_t println();
};

class Stream : public Print {
public:
    virtual int available() = 0;
    virtual int read() = 0;
    virtual void flush() = 0;
};

class USBSerial : public Stream {
public:
    void begin(long speed);
    bool isConnected();
    int available() override;
    int read() override;
    void flush() override;
    size_t write(uint8_t c) override;
    using Print::write;
};
extern USBSerial Serial;

// -- JSON (Device OS spark_wiring_json.h) -------------------------------------------
class JSONString {
public:
    const char* data() const;
    size_t size() const;
    bool isEmpty() const;
    explicit operator const char*() const;
    bool operator==(const char* str) const;

private:
    friend class JSONValue;
    friend class JSONObjectIterator;
    const char* data_ = "";
    size_t size_ = 0;
};

class JSONValue {
public:
    JSONValue();
    bool isValid() const;
    bool isNull() const;
    bool isBool() const;
    bool isNumber() const;
    bool isString() const;
    bool isArray() const;
    bool isObject() const;
    bool toBool() const;
    int toInt() const;
    double toDouble() const;
    JSONString toString() const;
    static JSONValue parseCopy(const char* json);
    static JSONValue parseCopy(const char* json, size_t size);

private:
    friend class JSONObjectIterator;
    friend class JSONArrayIterator;
    const void* node_ = nullptr;
};

class JSONObjectIterator {
public:
    explicit JSONObjectIterator(const JSONValue& value);
    bool next();
    JSONString name() const;
    JSONValue value() const;

private:
    const void* node_ = nullptr;
    long index_ = -1;
};

class JSONArrayIterator {
public:
    explicit JSONArrayIterator(const JSONValue& value);
    bool next();
    JSONValue value() const;

private:
    const void* node_ = nullptr;
    long index_ = -1;
};

class JSONWriter {
public:
    virtual ~JSONWriter() = default;
    JSONWriter& beginArray();
    JSONWriter& endArray();
    JSONWriter& beginObject();
    JSONWriter& endObject();
    JSONWriter& name(const char* name);
    JSONWriter& value(bool val);
    JSONWriter& value(int val);
    JSONWriter& value(unsigned val);
    JSONWriter& value(long val);
    JSONWriter& value(unsigned long val);
    JSONWriter& value(double val);
    JSONWriter& value(double val, int precision);
    JSONWriter& value(const char* val);
    JSONWriter& nullValue();

protected:
    virtual void write(const char* data, size_t size) = 0;

private:
    void separate();
    void writeString(const char* text);
    bool first_ = true;
    bool afterName_ = false;
};

class JSONStreamWriter : public JSONWriter {
public:
    explicit JSONStreamWriter(Print& stream);

protected:
    void write(const char* data, size_t size) override;

private:
    Print& stream_;
};

// -- power --------------------------------------------------------------------------
class FuelGauge {
public:
    FuelGauge();
    float getVCell();
    float getSoC();
};

// -- cellular and cloud -----------------------------------------------------------------
class CellularSignal {
public:
    float getStrengthValue() const;
    float getQualityValue() const;
};

class CellularClass {
public:
    void on();
    void off();
    bool isOn();
    bool ready();
    CellularSignal RSSI();
};
extern CellularClass Cellular;

class CloudClass {
public:
    void connect();
    void disconnect();
    bool connected();
    bool process();
};
extern CloudClass Particle;

// -- system ----------------------------------------------------------------------------
enum class SystemSleepMode : uint8_t { NONE = 0, STOP = 1, ULTRA_LOW_POWER = 2, HIBERNATE = 3 };

class SystemSleepConfiguration {
public:
    SystemSleepConfiguration();
    SystemSleepConfiguration& mode(SystemSleepMode mode);
    SystemSleepConfiguration& duration(system_tick_t ms);
};

class SystemSleepResult {
public:
    int error() const;
};

class SystemClass {
public:
    String deviceID();
    String version();
    uint32_t freeMemory();
    void reset();
    SystemSleepResult sleep(const SystemSleepConfiguration& config);
};
extern SystemClass System;

// -- the application entry points -----------------------------------------------------
void setup();
void loop();
