/// Why a recording was rejected, or why an encode could not run.
///
/// Every code is stable (it appears in `--json` reports and in the ledger); the message names the
/// file and the reason. Codes are static members over a private enum so new ones can be added
/// without breaking exhaustive switches in callers.
public struct AudioError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable code (`silent_recording`). New codes are added as static
    /// members, never as enum cases, so callers' switches do not break.
    public struct Code: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The file is 0 bytes or too small to hold any audio header.
        public static let emptyFile = Code("empty_file")
        /// The file could not be read (permissions, I/O error, vanished).
        public static let unreadable = Code("unreadable")
        /// The leading bytes match no container on the allow-list (text, random bytes, MAT4 …).
        public static let unsupportedContainer = Code("unsupported_container")
        /// libsndfile could not open or parse the container.
        public static let undecodable = Code("undecodable")
        /// The container opened but its codec is not on the allow-list.
        public static let unsupportedCodec = Code("unsupported_codec")
        /// Zero or too many channels, or a sample rate outside the accepted range.
        public static let unsupportedLayout = Code("unsupported_layout")
        /// The header promises something no real recording has (negative or absurd length).
        public static let implausibleHeader = Code("implausible_header")
        /// Nothing decoded at all (header only, or data lost).
        public static let noAudio = Code("no_audio")
        /// Shorter than the configured minimum duration.
        public static let tooShort = Code("too_short")
        /// Too many NaN/Inf samples to be a real recording.
        public static let corruptFloat = Code("corrupt_float")
        /// Digital silence, or nothing above the silence thresholds anywhere.
        public static let silentRecording = Code("silent_recording")
        /// The transcode settings are not something LAME can encode safely.
        public static let invalidSettings = Code("invalid_settings")
        /// LAME or libsoxr reported an error while encoding.
        public static let encoderFailed = Code("encoder_failed")
        /// The output could not be written.
        public static let outputFailed = Code("output_failed")
        /// The output could not be written because its disk (or the user's quota) is full. Not a
        /// fault of the recording: the same transcode succeeds once there is space. No partial
        /// output is left behind.
        public static let diskFull = Code("disk_full")
        /// A second decode pass disagreed with the first (the file changed underneath us).
        public static let sourceChanged = Code("source_changed")

        public var description: String { rawValue }
    }

    public let code: Code
    /// The file involved, as the caller named it.
    public var path: String
    /// What went wrong, for a person: no secrets, no C pointers.
    public var reason: String
    /// libsndfile / LAME / soxr status, when one was involved (for logs and tests).
    package var libraryStatus: Int32?

    package init(_ code: Code, path: String, _ reason: String, libraryStatus: Int32? = nil) {
        self.code = code
        self.path = path
        self.reason = reason
        self.libraryStatus = libraryStatus
    }

    /// `path: reason`, ready for a report or a log line.
    public var message: String { path.isEmpty ? reason : "\(path): \(reason)" }
    public var description: String { "\(code): \(message)" }
}

/// Something worth telling about a recording that is still processed.
public struct AudioWarning: Sendable, Equatable, Codable, CustomStringConvertible {
    /// A stable, machine-readable code (`truncated`).
    public struct Code: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        private init(_ rawValue: String) { self.rawValue = rawValue }
        public static let truncated = Code("truncated")
        public static let salvagedHeader = Code("salvaged_header")
        public static let nonFiniteSamples = Code("nonfinite_samples")
        public static let shortRecording = Code("short_recording")
        public static let clipped = Code("clipped")
        public static let deadAir = Code("dead_air")
        public static let oneWayAudio = Code("one_way_audio")
        public static let lowLevel = Code("low_level")
        public static let dcOffset = Code("dc_offset")
        public static let downmixed = Code("downmixed")
        public static let lengthMismatch = Code("length_mismatch")
        public static let durationMismatch = Code("duration_mismatch")
        public static let missingSidecar = Code("missing_sidecar")
        public static let hardCut = Code("hard_cut")
        public var description: String { rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
