import CallTesting
import Foundation
import Testing

/// What a first use with mistakes meets (issue 13): overlapping input and output trees, files
/// callrec did not write, impossible settings, a state directory that does not exist, and
/// recordings at studio rates. Each from the outside: the built binary on real files.
@Suite struct SettingsAndTreesTests {
    let callrec = callrecExecutable()

    /// Every file under `dir` with its bytes, to show a refused run changed nothing.
    func snapshot(_ dir: String) -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: dir)
        while let relative = enumerator?.nextObject() as? String {
            let path = "\(dir)/\(relative)"
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
                files[relative] = FileManager.default.contents(atPath: path)
            }
        }
        return files
    }

    func recordings(in dir: String) async throws {
        try FileManager.default.createDirectory(atPath: "\(dir)/sub", withIntermediateDirectories: true)
        try SyntheticAudio.write(.speech(), seconds: 3, format: .wavULaw, to: "\(dir)/a.wav")
        // An MP3 among the recordings: the file an overlapping output would replace.
        try SyntheticAudio.write(.speech(), seconds: 3, to: "\(dir)/sub/b.wav")
        let mp3 = try await runProcess(callrec, ["transcode", "--settle", "0", dir, "--out", "\(dir)-mp3"])
        #expect(mp3.status == 0, "\(mp3.stderr)")
        try FileManager.default.moveItem(atPath: "\(dir)-mp3/sub/b.mp3", toPath: "\(dir)/sub/b.mp3")
        try FileManager.default.removeItem(atPath: "\(dir)/sub/b.wav")
        try FileManager.default.removeItem(atPath: "\(dir)-mp3")
    }

    @Test func overlappingTreesAreRefusedBeforeAnythingIsWritten() async throws {
        try await withTemporaryDirectory { dir in
            let input = "\(dir)/calls"
            try await recordings(in: input)
            let before = snapshot(input)
            try FileManager.default.createSymbolicLink(atPath: "\(dir)/link", withDestinationPath: input)
            for out in [input, "\(input)/", "\(input)/out", "\(input)/sub", dir, "\(dir)/link", "\(dir)/link/deeper"] {
                let result = try await runProcess(callrec, ["transcode", "--settle", "0", input, "--out", out])
                #expect(result.status == 2, "--out \(out): \(result.stderr)")
                #expect(result.stderr.contains("--out"), "\(result.stderr)")
                #expect(snapshot(input) == before, "--out \(out) changed the recordings")
            }
            // Beside it is fine.
            let beside = try await runProcess(callrec, ["transcode", "--settle", "0", input, "--out", "\(dir)/mp3"])
            #expect(beside.status == 0, "\(beside.stderr)")
            #expect(snapshot(input) == before)
        }
    }

    @Test func aFileCallrecDidNotWriteIsNeverReplaced() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 3, to: "\(dir)/in/a.wav")
            try SyntheticAudio.write(.speech(), seconds: 4, to: "\(dir)/in/b.wav")  // other bytes: not a copy
            try FileManager.default.createDirectory(atPath: "\(dir)/out", withIntermediateDirectories: true)
            let mine = Data("the user's own notes, named like an output".utf8)
            _ = FileManager.default.createFile(atPath: "\(dir)/out/a.mp3", contents: mine)
            let result = try await runProcess(callrec, ["transcode", "--settle", "0", "\(dir)/in", "--out", "\(dir)/out", "--json"])
            #expect(result.status == 1, "\(result.stderr)")
            #expect(FileManager.default.contents(atPath: "\(dir)/out/a.mp3") == mine)
            let doc = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
            let files = try #require(doc["files"] as? [[String: Any]])
            let a = try #require(files.first { $0["path"] as? String == "a.wav" })
            let error = try #require(a["error"] as? [String: Any])
            #expect(error["code"] as? String == "output_exists")
            #expect((error["message"] as? String)?.contains("\(dir)/out/a.mp3") == true)
            #expect(files.first { $0["path"] as? String == "b.wav" }?["status"] as? String == "ok")
            // Its own outputs callrec may redo.
            let again = try await runProcess(callrec, ["transcode", "--settle", "0", "\(dir)/in", "--out", "\(dir)/out", "--force", "--json"])
            let againFiles = try #require((try JSONSerialization.jsonObject(with: again.stdout) as? [String: Any])?["files"] as? [[String: Any]])
            #expect(againFiles.first { $0["path"] as? String == "b.wav" }?["status"] as? String == "ok", "\(again.stderr)")
            #expect(FileManager.default.contents(atPath: "\(dir)/out/a.mp3") == mine)
        }
    }

    @Test(arguments: [
        ["--bitrate", "16"], ["--bitrate", "4"], ["--quality", "12"], ["--max-sample-rate", "7000"],
        ["--part-max-minutes", "0"], ["--part-max-bytes", "0"], ["--part-max-bytes", "lots"], ["--min-silence-ms", "-1"],
        ["--min-duration", "-1"], ["--max-duration-hours", "0"], ["--max-nonfinite-ratio", "2"],
        ["--silence-rms-db", "6"], ["--min-sample-rate", "0"], ["--min-sample-rate", "16000", "--max-input-sample-rate", "8000"],
        ["--upload-slots", "0"], ["--jobs", "0"], ["--resample-quality", "best"],
    ])
    func impossibleSettingsAreRefusedBeforeAnyFileIsRead(_ flags: [String]) async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 2, to: "\(dir)/in/a.wav")
            let upload = try await runProcess(callrec, ["upload", "--settle", "0", "\(dir)/in", "--sandbox", "--state", "\(dir)/state"] + flags)
            #expect(upload.status == 2, "upload \(flags): \(upload.stderr)")
            #expect(upload.stderr.contains(flags[0]) || upload.stderr.contains(flags.last!), "\(upload.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/state"), "upload \(flags) made its state before refusing")
            if flags[0] != "--upload-slots" {
                let transcode = try await runProcess(callrec, ["transcode", "--settle", "0", "\(dir)/in", "--out", "\(dir)/out"] + flags)
                #expect(transcode.status == 2, "transcode \(flags): \(transcode.stderr)")
                #expect(!FileManager.default.fileExists(atPath: "\(dir)/out"))
            }
        }
    }

    @Test func aBitrateThatFitsSomeRatesIsTakenAndFailsOnlyTheOthers() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 2, format: .wavULaw, to: "\(dir)/in/narrow.wav")
            try SyntheticAudio.write(.speech(), seconds: 2, sampleRate: 16000, to: "\(dir)/in/wide.wav")
            // 24 kbps keeps the LAME tag at 8 kHz only.
            let result = try await runProcess(callrec, ["transcode", "--settle", "0", "\(dir)/in", "--out", "\(dir)/out", "--bitrate", "24", "--json"])
            #expect(result.status == 1, "\(result.stderr)")
            let files = try #require((try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])?["files"] as? [[String: Any]])
            #expect(files.first { $0["path"] as? String == "narrow.wav" }?["status"] as? String == "ok")
            #expect((files.first { $0["path"] as? String == "wide.wav" }?["error"] as? [String: Any])?["code"] as? String == "invalid_settings")
        }
    }

    @Test func commandsThatReadTheStateDoNotMakeAnEmptyOne() async throws {
        try await withTemporaryDirectory { dir in
            let state = "\(dir)/typo"
            for arguments in [["status"], ["queue", "ls"], ["queue", "purge"], ["trash", "purge"], ["spool", "prune"], ["reconcile"],
                              ["delete", "--call-log", "17"]] {
                // (With credentials, pointing at a closed port: the state is looked at first.)
                var environment = ProcessInfo.processInfo.environment
                environment["PIPEDRIVE_API_TOKEN"] = "t"
                environment["PIPEDRIVE_API_URL"] = "http://127.0.0.1:9/v1"
                let result = try await runProcess(callrec, arguments + ["--state", state], environment: environment)
                #expect(result.status == 2, "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains(state), "\(arguments): \(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: state), "\(arguments) made \(state)")
            }
            // An empty directory is no state either.
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let empty = try await runProcess(callrec, ["status", "--state", state])
            #expect(empty.status == 2)
            #expect(!FileManager.default.fileExists(atPath: "\(state)/callrec.sqlite"))
            // enqueue makes it; then status reads it.
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            let enqueue = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", state])
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            #expect(try await runProcess(callrec, ["status", "--state", state]).status == 0)
        }
    }

    /// A file the user cannot read fails alone, and its message names it once (it said
    /// `a.wav: /tmp/…/a.wav: cannot open: …`). As root, the run is made as `nobody`, for whom a
    /// mode-000 file is unreadable (root reads everything).
    @Test func anUnreadableFileIsNamedOnceInItsMessage() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 2, to: "\(dir)/in/locked.wav")
            try SyntheticAudio.write(.speech(), seconds: 2, to: "\(dir)/in/open.wav")
            try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: "\(dir)/in/locked.wav")
            try FileManager.default.createDirectory(atPath: "\(dir)/out", withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: "\(dir)/out")
            var command = callrec, arguments = ["transcode", "--settle", "0", "\(dir)/in", "--out", "\(dir)/out", "--json"]
            if getuid() == 0 {
                let runuser = try #require(["/usr/sbin/runuser", "/sbin/runuser"].first { FileManager.default.isExecutableFile(atPath: $0) })
                arguments = ["-u", "nobody", "--", callrec] + arguments
                command = runuser
            }
            let result = try await runProcess(command, arguments)
            #expect(result.status == 1, "\(result.stderr)")
            let files = try #require((try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])?["files"] as? [[String: Any]])
            let locked = try #require(files.first { $0["path"] as? String == "locked.wav" })
            let error = try #require(locked["error"] as? [String: Any])
            #expect(error["code"] as? String == "unreadable")
            let message = try #require(error["message"] as? String)
            #expect(message.components(separatedBy: "locked.wav").count == 2, "\(message)")
            #expect(files.first { $0["path"] as? String == "open.wav" }?["status"] as? String == "ok")
        }
    }

    /// Hardware recorders and softphones record at 96 or 192 kHz: resampled (libsoxr) to the
    /// 16 kHz speech rate, the parts decode (ffmpeg) to exactly the recording's length.
    @Test(arguments: [(96000, 1), (192_000, 2)])
    func studioRatesAreResampledNotRefused(_ rate: Int, _ channels: Int) async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 3, sampleRate: rate, channels: channels, to: "\(dir)/in/hires.wav")
            let result = try await runProcess(callrec, ["transcode", "--settle", "0", "\(dir)/in", "--out", "\(dir)/out", "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let files = try #require((try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])?["files"] as? [[String: Any]])
            let part = try #require((files.first?["parts"] as? [[String: Any]])?.first)
            #expect(part["sample_rate"] as? Int == 16000)
            #expect(part["channels"] as? Int == channels)
            if let frames = try ffmpegDecodedFrames("\(dir)/out/hires.mp3", channels: channels) {
                #expect(frames == 3 * 16000)
            }
        }
    }
}
