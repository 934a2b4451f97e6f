namespace NbdFast.Interop.Tests.Support;

/// <summary>Finds the published nbdfast binary: $NBDFAST_BINARY, else artifacts/ under the repository root.</summary>
public static class NbdfastBinary
{
    private static readonly Lazy<string> Located = new(Locate);

    /// <summary>The binary's full path; throws (failing the test) when it cannot be found.</summary>
    public static string Path => Located.Value;

    private static string Locate()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("NBDFAST_BINARY");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            if (!File.Exists(fromEnvironment))
            {
                throw new InvalidOperationException(
                    $"NBDFAST_BINARY={fromEnvironment} does not exist; build it with " +
                    "'dotnet publish src/NbdFast.Cli/NbdFast.Cli.csproj -c Release -r linux-x64 -o artifacts/publish'");
            }
            return System.IO.Path.GetFullPath(fromEnvironment);
        }

        string? root = RepositoryRoot.Find();
        if (root is null)
        {
            throw new InvalidOperationException(
                $"NBDFAST_BINARY is not set and no NbdFast.sln was found above {AppContext.BaseDirectory}");
        }
        string[] candidates =
        [
            System.IO.Path.Combine(root, "artifacts", "nbdfast"),
            System.IO.Path.Combine(root, "artifacts", "publish", "nbdfast"),
        ];
        return candidates.FirstOrDefault(File.Exists) ?? throw new InvalidOperationException(
            $"the nbdfast binary was not found (looked for {string.Join(" and ", candidates)}); set NBDFAST_BINARY " +
            "or build it with 'dotnet publish src/NbdFast.Cli/NbdFast.Cli.csproj -c Release -r linux-x64 -o artifacts/publish'");
    }
}
