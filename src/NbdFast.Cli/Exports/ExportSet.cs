namespace NbdFast.Cli.Exports;

/// <summary>Rules about a whole set of exports.</summary>
internal static class ExportSet
{
    public static void CheckUniqueNames(IReadOnlyList<ExportSpec> specs)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (ExportSpec spec in specs)
        {
            if (!seen.Add(spec.Name))
            {
                throw new UsageException($"export '{spec.Name}' is defined twice");
            }
        }
    }

    /// <summary>The start-up line's account of the exports, e.g. <c>disk.img read-only as export ''</c>.</summary>
    public static string Describe(IEnumerable<ExportSpec> specs) =>
        string.Join("; ", specs.Select(s => $"{s.Source} {s.Access} as export '{NbdFast.Negotiation.ClientText.Echo(s.Name)}'"));
}
