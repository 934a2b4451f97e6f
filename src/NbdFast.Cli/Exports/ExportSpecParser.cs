using System.Globalization;

namespace NbdFast.Cli.Exports;

/// <summary>
/// Parses <c>--export NAME=SOURCE[,key[=value]]...</c>, where SOURCE is a path or <c>memory:SIZE</c> and the keys
/// are ro, rw, direct, tls-only, snapshot, offset=N, size=N, max-connections=N and desc=TEXT. desc takes the rest
/// of the text, commas included, so it must come last.
/// </summary>
internal static class ExportSpecParser
{
    public static ExportSpec Parse(string text)
    {
        int equals = text.IndexOf('=', StringComparison.Ordinal);
        if (equals < 0)
        {
            throw new UsageException($"--export: '{text}' is not NAME=PATH[,options]");
        }
        string name = text[..equals];
        string rest = text[(equals + 1)..];
        string? description = null;
        int descAt = rest.IndexOf(",desc=", StringComparison.Ordinal);
        if (descAt >= 0)
        {
            description = rest[(descAt + ",desc=".Length)..];
            rest = rest[..descAt];
        }
        string[] parts = rest.Split(',');
        string source = parts[0];
        if (source.Length == 0)
        {
            throw new UsageException($"--export {name}: no PATH (or memory:SIZE) given");
        }
        var spec = SourceSpec(name, source);
        foreach (string part in parts.AsSpan(1))
        {
            spec = ApplyKey(spec, part);
        }
        return ExportSpecValidator.Validate(spec with { Description = description ?? spec.Description }, $"--export {name}");
    }

    private static ExportSpec SourceSpec(string name, string source)
    {
        if (!source.StartsWith("memory:", StringComparison.Ordinal))
        {
            return new ExportSpec { Name = name, Path = source };
        }
        string size = source["memory:".Length..];
        if (!SizeParser.TryParse(size, out long bytes) || bytes <= 0)
        {
            throw new UsageException($"--export {name}: '{size}' is not a size (examples: 512M, 1G)");
        }
        return new ExportSpec { Name = name, MemorySize = bytes };
    }

    private static ExportSpec ApplyKey(ExportSpec spec, string part)
    {
        int equals = part.IndexOf('=', StringComparison.Ordinal);
        string key = equals < 0 ? part : part[..equals];
        string? value = equals < 0 ? null : part[(equals + 1)..];
        return (key, value) switch
        {
            ("ro", null) => spec with { Writable = false },
            ("rw", null) => spec with { Writable = true },
            ("direct", null) => spec with { Direct = true },
            ("tls-only", null) => spec with { TlsOnly = true },
            ("snapshot", null) => spec with { Snapshot = true },
            ("offset", not null) => spec with { Offset = ParseSize(spec, key, value) },
            ("size", not null) => spec with { Size = ParseSize(spec, key, value) },
            ("max-connections", not null) => spec with { MaxConnections = ParseCount(spec, key, value) },
            _ => throw new UsageException($"--export {spec.Name}: unknown option '{part}' (known: ro, rw, direct, tls-only, snapshot, offset=, size=, max-connections=, desc=)"),
        };
    }

    private static long ParseSize(ExportSpec spec, string key, string value) =>
        SizeParser.TryParse(value, out long bytes)
            ? bytes
            : throw new UsageException($"--export {spec.Name}: {key}='{value}' is not a size");

    private static int ParseCount(ExportSpec spec, string key, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int count) && count > 0
            ? count
            : throw new UsageException($"--export {spec.Name}: {key}='{value}' is not a positive number");
}
