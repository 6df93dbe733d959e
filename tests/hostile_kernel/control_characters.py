"""An exception message written to forge result lines on a terminal: carriage returns,
line erases, a fake result line, an OSC 52 clipboard write and a Unicode line separator."""


def encode(frames, quality):
    raise ValueError(
        "\r\x1b[2K\x1b[1A\x1b[2Kquality 50: ok 99.9 dB\n\x1b]52;c;ZWNobyBwd25lZA==\x07"
        "\u2028all points ok\x9b31m"
    )


def decode(bitstream):
    raise ValueError("not reached")
