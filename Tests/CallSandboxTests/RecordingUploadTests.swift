import CallSandbox
import CallTesting
import Foundation
import NIOHTTP1
import Testing

@Suite struct RecordingUploadTests {
    @Test func storesTheExactBytesThenAnswersConflict() async throws {
        let mp3 = try makeMP3(seconds: 5)
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            let first = try await client.upload(id, data: mp3, filename: "call-17-part01.mp3")
            #expect(first.status == 200, "\(first.text)")
            #expect(try first.json["success"] as? Bool == true)
            #expect(first.header("x-ratelimit-remaining") != nil)

            let log = try #require(await sandbox.callLog(id: id))
            let recording = try #require(log.recording)
            #expect(log.hasRecording)
            #expect(recording.sha256 == sha256Hex(mp3))
            #expect(recording.bytes == Int64(mp3.count))
            #expect(recording.contentType == "audio/mpeg")
            #expect(recording.filename == "call-17-part01.mp3")
            let path = try #require(await sandbox.recordingPath(callLogId: id))
            #expect(FileManager.default.contents(atPath: path) == mp3)

            let got = try await client.send(.GET, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)
            #expect((try got.json["data"] as? [String: Any])?["has_recording"] as? Bool == true)

            let served = try await client.send(.GET, "/_sandbox/pipedrive/callLogs/\(id)/recording")
            #expect(served.status == 200)
            #expect(served.body == mp3)

            let second = try await client.upload(id, data: mp3)
            #expect(second.status == 409)
            #expect(try second.json["error"] as? String == "A recording for this call already exists")
            #expect(await sandbox.callLog(id: id)?.recording?.sha256 == sha256Hex(mp3))

            // Deleting the call log deletes its audio.
            let deleted = try await client.send(.DELETE, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)
            #expect(deleted.status == 200)
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(await sandbox.recordingPath(callLogId: id) == nil)
            #expect(await sandbox.callLog(id: id)?.recording?.stored == false)
            // 10 create + 10 upload + 2 get + 10 conflicting upload + 6 delete
            #expect(await sandbox.tokensSpent() == 38)
        }
    }

    @Test func streamsALargeUploadInSmallChunks() async throws {
        let mp3 = try makeMP3(seconds: 60, sampleRate: 16000)
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            let result = try await client.upload(id, data: mp3, streamChunk: 4096)
            #expect(result.status == 200, "\(result.text)")
            #expect(await sandbox.callLog(id: id)?.recording?.sha256 == sha256Hex(mp3))
        }
    }

    @Test func rejectsBytesThatAreNotMP3() async throws {
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            let text = Data(String(repeating: "this is not audio at all\n", count: 200).utf8)
            let result = try await client.upload(id, data: text)
            #expect(result.status == 400)
            let message = try #require(try result.json["error"] as? String)
            #expect(message.hasPrefix("The file is not a playable MP3 recording"))

            let wav = temporaryPath() + ".wav"
            defer { try? FileManager.default.removeItem(atPath: wav) }
            try SyntheticAudio.write(.speech(), seconds: 2, format: .wavPCM16, to: wav)
            let wavResult = try await client.upload(id, data: try Data(contentsOf: URL(fileURLWithPath: wav)), contentType: "audio/wav")
            #expect(wavResult.status == 400)
            #expect((try wavResult.json["error"] as? String)?.contains("not MP3") == true)

            #expect(await sandbox.callLog(id: id)?.hasRecording == false)
            // Nothing is left behind and a real MP3 still goes in afterwards.
            let ok = try await client.upload(id, data: try makeMP3())
            #expect(ok.status == 200)
        }
    }

    /// The check reads frame headers after the ID3v2 tag, however large the tag (cover art):
    /// a check that decoded the file's first 16 KiB saw nothing but the tag and refused it.
    @Test func acceptsAnMP3BehindALargeID3Tag() async throws {
        let size = 20 << 10
        var tagged = Data([0x49, 0x44, 0x33, 3, 0, 0, UInt8(size >> 21 & 0x7F), UInt8(size >> 14 & 0x7F), UInt8(size >> 7 & 0x7F), UInt8(size & 0x7F)])
        tagged.append(Data(count: size))  // padding: a valid, empty tag body
        tagged.append(try makeMP3(seconds: 5))
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            let result = try await client.upload(id, data: tagged)
            #expect(result.status == 200, "\(result.text)")
            #expect(await sandbox.callLog(id: id)?.recording?.sha256 == sha256Hex(tagged))
        }
    }

    /// A very short MP3 (fewer frames than the run the check asks for) and one cut in the
    /// middle of a frame are still MP3.
    @Test func acceptsShortAndCutMP3s() async throws {
        let short = try makeMP3(seconds: 0.2)
        let long = try makeMP3(seconds: 8, sampleRate: 16000)
        let cut = long.prefix(long.count * 3 / 5 + 7)
        try await withTestSandbox { client, _ in
            for (name, data) in [("short", short), ("cut", Data(cut))] {
                let result = try await client.upload(try await client.newCallLog(), data: data)
                #expect(result.status == 200, "\(name): \(result.text)")
            }
        }
    }

    /// What is not a run of MP3 frames is refused with the reason: MPEG audio of another layer,
    /// and a few real frames followed by something else.
    @Test func rejectsWhatIsNotARunOfMP3Frames() async throws {
        // MPEG-1 Layer II, 128 kbps, 44.1 kHz, mono: 417-byte frames (header, then zeros).
        var layer2 = Data()
        for _ in 0..<40 { layer2.append(Data([0xFF, 0xFD, 0x80, 0xC0] + [UInt8](repeating: 0, count: 413))) }
        let mp3 = try makeMP3(seconds: 5)
        let frames = mp3FrameOffsets(mp3, count: 4)
        try #require(frames.count == 4)
        var frankenstein = mp3.prefix(frames[3])
        frankenstein.append(Data(String(repeating: "this is not audio at all\n", count: 800).utf8))
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            let second = try await client.upload(id, data: layer2)
            #expect(second.status == 400)
            #expect(try second.json["error"] as? String == "The file is not a playable MP3 recording: the file is MPEG-1 Layer II audio, not MP3")
            #expect(await sandbox.callLog(id: id)?.hasRecording == false)
            let other = try await client.newCallLog()
            let mixed = try await client.upload(other, data: Data(frankenstein))
            #expect(mixed.status == 400)
            #expect(try mixed.json["error"] as? String == "The file is not a playable MP3 recording: only 3 MPEG audio frames at its start; byte \(frames[3]) is not a frame header")
            #expect(await sandbox.callLog(id: other)?.hasRecording == false)
        }
    }

    @Test func rejectsUploadsWithoutAFilePart() async throws {
        let mp3 = try makeMP3(seconds: 2)
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            let wrongName = try await client.upload(id, data: mp3, name: "audio")
            #expect(wrongName.status == 400)
            #expect(try wrongName.json["error"] as? String == "No files were provided with the request.")

            let notMultipart = try await client.send(.POST, "/v1/callLogs/\(id)/recordings",
                                                     headers: client.pipedriveAuth.merging(["Content-Type": "audio/mpeg"]) { $1 }, body: mp3)
            #expect(notMultipart.status == 400)
            #expect(try notMultipart.json["error"] as? String == "No files were provided with the request.")

            let plainField = try await client.upload(id, data: Data("hello".utf8), filename: nil, contentType: nil)
            #expect(plainField.status == 400)
            #expect(try plainField.json["error"] as? String == "Invalid input: file - This field was not expected.")

            let notAudio = try await client.upload(id, data: mp3, contentType: "application/octet-stream")
            #expect(notAudio.status == 400)

            let empty = try await client.upload(id, data: Data())
            #expect(empty.status == 400)
            #expect(await sandbox.callLog(id: id)?.hasRecording == false)
        }
    }

    @Test func answersNotFoundAndGoneForUploads() async throws {
        let mp3 = try makeMP3(seconds: 2)
        try await withTestSandbox { client, _ in
            let unknown = try await client.upload("CAnope", data: mp3)
            #expect(unknown.status == 404)
            let id = try await client.newCallLog()
            _ = try await client.send(.DELETE, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)
            let gone = try await client.upload(id, data: mp3)
            #expect(gone.status == 410)
        }
    }

    @Test func enforcesTheConfiguredSizeLimit() async throws {
        let mp3 = try makeMP3(seconds: 5)
        try await withTestSandbox(testConfiguration { $0.maximumRecordingBytes = 1000 }) { client, sandbox in
            let id = try await client.newCallLog()
            let result = try await client.upload(id, data: mp3)
            #expect(result.status == 413)
            #expect(await sandbox.callLog(id: id)?.hasRecording == false)
        }
    }
}

