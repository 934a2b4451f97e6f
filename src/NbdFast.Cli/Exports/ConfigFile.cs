using System.Text.Json;
using System.Text.Json.Serialization;

namespace NbdFast.Cli.Exports;

/// <summary>
/// The <c>--config FILE</c> document: a JSON object with an <c>exports</c> array. Read again on SIGHUP.
/// </summary>
/// <example>
/// { "exports": [
///     { "name": "disk0", "path": "/srv/disk0.img", "writable": true, "description": "data disk" },
///     { "name": "boot", "path": "/dev/sdb", "offset": 1048576, "size": "512M", "snapshot": true },
///     { "name": "scratch", "memory": "1G", "writable": true, "maxConnections": 4 } ] }
/// </example>
internal static class ConfigFile
{
    /// <summary>Reads and validates the exports; throws <see cref="UsageException"/> with one line on any mistake.</summary>
    public static IReadOnlyList<ExportSpec> Load(string path)
    {
        ConfigDocument? document;
        try
        {
            using FileStream stream = File.OpenRead(path);
            document = JsonSerializer.Deserialize(stream, ConfigJsonContext.Default.ConfigDocument);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--config: cannot read {path}: {e.Message}");
        }
        catch (JsonException e)
        {
            throw new UsageException($"--config: {path}: {e.Message}");
        }
        if (document?.Exports is not { Count: > 0 } exports)
        {
            throw new UsageException($"--config: {path} has no exports");
        }
        var specs = new List<ExportSpec>(exports.Count);
        foreach (ConfigExport export in exports)
        {
            specs.Add(ToSpec(export, path));
        }
        ExportSet.CheckUniqueNames(specs);
        return specs;
    }

    private static ExportSpec ToSpec(ConfigExport export, string path)
    {
        string where = $"--config: {path}: export '{export.Name}'";
        if (export.Name is null)
        {
            throw new UsageException($"--config: {path}: every export needs a \"name\"");
        }
        var spec = new ExportSpec
        {
            Name = export.Name,
            Path = export.Path,
            MemorySize = export.Memory is null ? null : Size(export.Memory, where, "memory"),
            Writable = export.Writable,
            Direct = export.Direct,
            Description = export.Description,
            TlsOnly = export.TlsOnly,
            Offset = export.Offset is null ? 0 : Size(export.Offset, where, "offset"),
            Size = export.Size is null ? null : Size(export.Size, where, "size"),
            Snapshot = export.Snapshot,
            MaxConnections = export.MaxConnections is <= 0 ? throw new UsageException($"{where}: maxConnections must be positive") : export.MaxConnections,
        };
        return ExportSpecValidator.Validate(spec, where);
    }

    /// <summary>Sizes may be JSON numbers or strings with a unit ("512M").</summary>
    private static long Size(JsonElement value, string where, string field) => value.ValueKind switch
    {
        JsonValueKind.Number when value.TryGetInt64(out long number) && number >= 0 => number,
        JsonValueKind.String when SizeParser.TryParse(value.GetString()!, out long bytes) => bytes,
        _ => throw new UsageException($"{where}: \"{field}\" is not a size"),
    };

    private static long Size(JsonElement? value, string where, string field) => Size(value!.Value, where, field);
}

/// <summary>The JSON shape of the config file.</summary>
internal sealed class ConfigDocument
{
    public List<ConfigExport>? Exports { get; set; }
}

/// <summary>One export in the config file; field names are camelCase in JSON.</summary>
internal sealed class ConfigExport
{
    public string? Name { get; set; }
    public string? Path { get; set; }
    public JsonElement? Memory { get; set; }
    public bool Writable { get; set; }
    public bool Direct { get; set; }
    public string? Description { get; set; }
    public bool TlsOnly { get; set; }
    public JsonElement? Offset { get; set; }
    public JsonElement? Size { get; set; }
    public bool Snapshot { get; set; }
    public int? MaxConnections { get; set; }
}

/// <summary>Source-generated (AOT-clean) serializer metadata; unknown fields are errors so typos do not pass silently.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ConfigDocument))]
internal sealed partial class ConfigJsonContext : JsonSerializerContext;
