namespace NbdFast.Interop.Tests.Support;

/// <summary>The checkout the tests run from: the nearest directory above the test assembly holding NbdFast.sln.</summary>
public static class RepositoryRoot
{
    /// <summary>The directory, or null when the tests run outside a checkout.</summary>
    public static string? Find() => Above(AppContext.BaseDirectory);

    /// <summary>The directory; throws (failing the test) outside a checkout.</summary>
    public static string Path => Find() ?? throw new InvalidOperationException(
        $"no NbdFast.sln was found above {AppContext.BaseDirectory}");

    private static string? Above(string start)
    {
        for (DirectoryInfo? directory = new(start); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(directory.FullName, "NbdFast.sln")))
            {
                return directory.FullName;
            }
        }
        return null;
    }
}
