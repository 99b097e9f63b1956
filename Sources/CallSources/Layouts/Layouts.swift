/// File-name layouts of the PBXs: a path under a source's root to what it says about its call.
public enum Layouts {
    /// The facts of `relativePath` (relative to the source's root), or nil when the name fits no
    /// layout of `kind` (the report then says `unrecognised_name`).
    public static func parse(relativePath: String, kind: SourceKind) -> NameFacts? {
        nil  // Step-0 stub (WP2 replaces it).
    }
}
