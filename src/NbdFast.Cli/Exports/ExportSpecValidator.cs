using System.Text;

namespace NbdFast.Cli.Exports;

/// <summary>Checks an export description for mistakes an operator can make, wherever it came from.</summary>
internal static class ExportSpecValidator
{
    /// <summary>Returns <paramref name="spec"/> or throws <see cref="UsageException"/> naming <paramref name="where"/>.</summary>
    public static ExportSpec Validate(ExportSpec spec, string where)
    {
        if (Encoding.UTF8.GetByteCount(spec.Name) > 4096 || spec.Name.Contains('\0'))
        {
            throw new UsageException($"{where}: names are at most 4096 bytes without NUL");
        }
        if (spec.Description is { } description && Encoding.UTF8.GetByteCount(description) > 4096)
        {
            throw new UsageException($"{where}: the description is longer than 4096 bytes");
        }
        if ((spec.Path is null) == (spec.MemorySize is null))
        {
            throw new UsageException($"{where}: give either a path or a memory size");
        }
        if (spec.MemorySize is <= 0)
        {
            // --export and --memory refuse 0 when parsing; the config file's "memory": 0 only meets this check.
            throw new UsageException($"{where}: a RAM disk needs a size above 0");
        }
        if (spec.Path is string path)
        {
            if (Directory.Exists(path))
            {
                throw new UsageException($"{path}: is a directory");
            }
            if (!File.Exists(path))
            {
                throw new UsageException($"{path}: no such file");
            }
        }
        if (spec.Direct && spec.Path is null)
        {
            throw new UsageException($"{where}: direct applies to a file, not to a RAM disk");
        }
        if (spec.Offset < 0 || spec.Size is < 0)
        {
            throw new UsageException($"{where}: offset and size must not be negative");
        }
        return spec;
    }
}
