/*
 * trayline-testfw: a manufacturing test firmware for Particle cellular devices
 * (Boron, B Series SoM, Tracker; Electron where noted) that speaks trayline's
 * test-firmware protocol over the USB serial port.
 *
 * The protocol (docs/test-firmware.md): the host writes one JSON object per
 * line, the device answers with JSON objects, one per line:
 *
 *   {"cmd":"hello"}                     -> {"hello":"trayline-testfw","protocol":1,
 *                                           "device_id":"...","device_os":"x.y.z"}
 *   {"cmd":"measure","names":["vbat"]}  -> {"measure":"vbat","value":3.91,"unit":"V"} ... {"done":true}
 *   {"cmd":"run","test":"radio","args":{"samples":3}}
 *                                       -> {"log":"..."} / {"measure":...} ... {"done":true}
 *   {"cmd":"setup_done"}                -> {"ok":true}
 *   {"cmd":"reset"}                     -> {"ok":true}, then the device resets
 *   anything malformed                  -> {"error":"bad request: <why>"}
 *
 * The device starts in MANUAL mode (the guide: test locally when the CM is out
 * of the area of service, or billing must not start yet); `run connect` turns
 * the modem on and connects to the cloud when the line's plan asks for it.
 *
 * The banner string "trayline-testfw" is what identifies this firmware: the
 * station checks it in the hello answer, and trayline's virtual devices look for
 * it in the flashed user part. Keep it in any firmware you derive from this one.
 *
 * Build: particle compile boron . --target 4.2.0 --saveTo testfw.bin
 * (see docs/test-firmware.md). Syntax-checked in trayline's tests against
 * stub/Particle.h with g++ -std=c++17 -fsyntax-only.
 */

#include "Particle.h"
#include "dct.h"

SYSTEM_MODE(MANUAL);
SYSTEM_THREAD(ENABLED);

namespace {

const char BANNER[] = "trayline-testfw";
const int PROTOCOL_VERSION = 1;
const size_t MAX_LINE = 512;

char line[MAX_LINE + 1];
size_t lineLength = 0;
bool lineOverflow = false;

FuelGauge fuel;

// ---------------------------------------------------------------- answers

void endLine() {
    Serial.write('\n');
}

void sendError(const char* why) {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("error").value(String::format("bad request: %s", why).c_str());
    w.endObject();
    endLine();
}

void sendOk(bool ok, const char* error = nullptr, const char* note = nullptr) {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("ok").value(ok);
    if (error) {
        w.name("error").value(error);
    }
    if (note) {
        w.name("note").value(note);
    }
    w.endObject();
    endLine();
}

void sendDone(bool ok, const char* error = nullptr) {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("done").value(ok);
    if (!ok && error) {
        w.name("error").value(error);
    }
    w.endObject();
    endLine();
}

void sendLog(const char* text) {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("log").value(text);
    w.endObject();
    endLine();
}

void sendNumber(const char* name, double value, const char* unit) {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("measure").value(name);
    w.name("value").value(value);
    w.name("unit").value(unit);
    w.endObject();
    endLine();
}

void sendText(const char* name, const char* value) {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("measure").value(name);
    w.name("value").value(value);
    w.name("unit").value("");
    w.endObject();
    endLine();
}

void sendBool(const char* name, bool value) {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("measure").value(name);
    w.name("value").value(value);
    w.name("unit").value("");
    w.endObject();
    endLine();
}

void sendUnknown(const char* name) {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("measure").value(name);
    w.name("error").value("unknown measurement");
    w.endObject();
    endLine();
}

// ---------------------------------------------------------------- measurements

bool modemOn(system_tick_t timeoutMs) {
    Cellular.on();
    const system_tick_t start = millis();
    while (!Cellular.isOn()) {
        if (millis() - start > timeoutMs) {
            return false;
        }
        delay(100);
    }
    return true;
}

// One named measurement. Add your board's own here (a sensor over I2C, an ADC
// channel through a divider, a GPIO loop-back): the host asks for them by name.
void measureOne(const char* name) {
    if (strcmp(name, "vbat") == 0) {
        sendNumber(name, fuel.getVCell(), "V");          // MAX17043 fuel gauge
    } else if (strcmp(name, "soc") == 0) {
        sendNumber(name, fuel.getSoC(), "%");
    } else if (strcmp(name, "vbat_adc") == 0) {
        // Boron: BATT reads VBAT through an on-board divider (Particle's Boron datasheet factor).
        sendNumber(name, analogRead(BATT) * 0.0011224, "V");
    } else if (strcmp(name, "free_memory") == 0) {
        sendNumber(name, System.freeMemory(), "B");
    } else if (strcmp(name, "device_os") == 0) {
        sendText(name, System.version().c_str());
    } else if (strcmp(name, "modem_on") == 0) {
        sendBool(name, Cellular.isOn());
    } else if (strcmp(name, "rssi") == 0 || strcmp(name, "qual") == 0) {
        if (!Cellular.isOn()) {
            JSONStreamWriter w(Serial);
            w.beginObject();
            w.name("measure").value(name);
            w.name("error").value("modem is off (run radio first)");
            w.endObject();
            endLine();
            return;
        }
        CellularSignal signal = Cellular.RSSI();
        if (strcmp(name, "rssi") == 0) {
            sendNumber(name, signal.getStrengthValue(), "dBm");
        } else {
            sendNumber(name, signal.getQualityValue(), "dB");
        }
    } else {
        sendUnknown(name);
    }
}

// ---------------------------------------------------------------- routines

int intArg(const JSONValue& args, const char* key, int fallback) {
    JSONObjectIterator it(args);
    while (it.next()) {
        if (it.name() == key && it.value().isNumber()) {
            return it.value().toInt();
        }
    }
    return fallback;
}

// "radio": modem on, then `samples` signal readings one second apart.
void runRadio(const JSONValue& args) {
    const int samples = intArg(args, "samples", 1);
    sendLog("turning the modem on");
    if (!modemOn(60000)) {
        sendDone(false, "modem did not turn on within 60 s");
        return;
    }
    for (int i = 0; i < samples; i++) {
        CellularSignal signal = Cellular.RSSI();
        sendNumber("rssi", signal.getStrengthValue(), "dBm");
        sendNumber("qual", signal.getQualityValue(), "dB");
        if (i + 1 < samples) {
            delay(1000);
        }
    }
    sendDone(true);
}

// "connect": connect to the Particle Cloud (blinking green -> breathing cyan);
// the station's cloud_online step then waits for the cloud to see the device.
void runConnect(const JSONValue& args) {
    const int seconds = intArg(args, "seconds", 600);
    if (!modemOn(60000)) {
        sendDone(false, "modem did not turn on within 60 s");
        return;
    }
    Particle.connect();
    const system_tick_t start = millis();
    system_tick_t lastLog = start;
    while (!Particle.connected()) {
        if (millis() - start > (system_tick_t)seconds * 1000) {
            sendBool("cloud_connected", false);
            sendDone(false, "not connected to the cloud in time");
            return;
        }
        if (millis() - lastLog > 10000) {
            sendLog(Cellular.ready() ? "cellular ready, connecting to the cloud" : "registering");
            lastLog = millis();
        }
        delay(100);
    }
    sendBool("cloud_connected", true);
    sendNumber("connect_time", (millis() - start) / 1000.0, "s");
    sendDone(true);
}

// "sleep": answer, then sleep so a DMM in series with the battery reads the
// sleep current (the plan's instrument step). USB goes away while asleep.
void runSleep(const JSONValue& args) {
    const int seconds = intArg(args, "seconds", 10);
    sendLog(String::format("sleeping %d s", seconds).c_str());
    sendDone(true);
    Serial.flush();
    delay(200);
    System.sleep(SystemSleepConfiguration()
                     .mode(SystemSleepMode::ULTRA_LOW_POWER)
                     .duration((system_tick_t)seconds * 1000));
}

void runTest(const JSONValue& request) {
    String test;
    JSONValue args;
    JSONObjectIterator it(request);
    while (it.next()) {
        if (it.name() == "test") {
            test = (const char*)it.value().toString();
        } else if (it.name() == "args") {
            args = it.value();
        }
    }
    if (test == "radio") {
        runRadio(args);
    } else if (test == "connect") {
        runConnect(args);
    } else if (test == "sleep") {
        runSleep(args);
    } else {
        sendDone(false, String::format("unknown test '%s'", test.c_str()).c_str());
    }
}

// ---------------------------------------------------------------- setup done

// The guide ("Programming"): Gen 3 devices need the setup-done flag, or they
// start in listening mode (blinking dark blue). Device OS 4.0 and later has no
// such flag; writing it there does no harm. Electron has no such DCT field
// (DCT_SETUP_DONE_OFFSET is not defined for it) and needs nothing.
void setupDone() {
#if defined(DCT_SETUP_DONE_OFFSET)
    uint8_t val = 0;
    if (!dct_read_app_data_copy(DCT_SETUP_DONE_OFFSET, &val, DCT_SETUP_DONE_SIZE) && val != 1) {
        val = 1;
        dct_write_app_data(&val, DCT_SETUP_DONE_OFFSET, DCT_SETUP_DONE_SIZE);
    }
    uint8_t check = 0;
    if (dct_read_app_data_copy(DCT_SETUP_DONE_OFFSET, &check, DCT_SETUP_DONE_SIZE) || check != 1) {
        sendOk(false, "setup-done flag did not read back as 1");
        return;
    }
    sendOk(true);
#else
    sendOk(true, nullptr, "no setup-done flag on this platform");
#endif
}

// ---------------------------------------------------------------- requests

void hello() {
    JSONStreamWriter w(Serial);
    w.beginObject();
    w.name("hello").value(BANNER);
    w.name("protocol").value(PROTOCOL_VERSION);
    w.name("device_id").value(System.deviceID().c_str());
    w.name("device_os").value(System.version().c_str());
    w.endObject();
    endLine();
}

void measureNames(const JSONValue& request) {
    bool sawNames = false;
    JSONObjectIterator it(request);
    while (it.next()) {
        if (it.name() == "names" && it.value().isArray()) {
            sawNames = true;
            JSONArrayIterator names(it.value());
            while (names.next()) {
                measureOne((const char*)names.value().toString());
            }
        }
    }
    if (!sawNames) {
        sendError("measure needs \"names\": [...]");
        return;
    }
    sendDone(true);
}

void handleLine(const char* text) {
    JSONValue request = JSONValue::parseCopy(text);
    if (!request.isValid() || !request.isObject()) {
        sendError("not a JSON object");
        return;
    }
    String cmd;
    JSONObjectIterator it(request);
    while (it.next()) {
        if (it.name() == "cmd" && it.value().isString()) {
            cmd = (const char*)it.value().toString();
        }
    }
    if (cmd == "hello") {
        hello();
    } else if (cmd == "measure") {
        measureNames(request);
    } else if (cmd == "run") {
        runTest(request);
    } else if (cmd == "setup_done") {
        setupDone();
    } else if (cmd == "reset") {
        sendOk(true);
        Serial.flush();
        delay(100);
        System.reset();
    } else if (cmd.length() == 0) {
        sendError("no \"cmd\"");
    } else {
        sendError(String::format("unknown cmd '%s'", cmd.c_str()).c_str());
    }
}

}  // namespace

void setup() {
    Serial.begin(115200);  // USB CDC: the baud rate is ignored
}

void loop() {
    while (Serial.available() > 0) {
        const int c = Serial.read();
        if (c < 0) {
            break;
        }
        if (c == '\r') {
            continue;
        }
        if (c == '\n') {
            if (lineOverflow) {
                sendError("line longer than 512 bytes");
            } else if (lineLength > 0) {
                line[lineLength] = '\0';
                handleLine(line);
            }
            lineLength = 0;
            lineOverflow = false;
        } else if (lineLength < MAX_LINE) {
            line[lineLength++] = (char)c;
        } else {
            lineOverflow = true;
        }
    }
}
